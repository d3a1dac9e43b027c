"""The launch harness: drives the service from outside, like a real client would."""
