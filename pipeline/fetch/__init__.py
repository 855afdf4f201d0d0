"""Stage 2, live: requests to the registries and the refresh of the snapshot store from them."""
