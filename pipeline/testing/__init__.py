"""Test doubles the tests and the bench share (no network: everything listens on 127.0.0.1)."""
