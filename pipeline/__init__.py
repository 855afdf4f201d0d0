"""trialrecon: reconcile what a page says about a drug's clinical trials with the registries."""

__version__ = "0.1.0"
