"""Secure Boot readiness: facts and rules on built images."""
