"""The conformance suite: checks report files against a ruleset (issue 4)."""
