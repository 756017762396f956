"""Rulesets (declarative YAML) and the reference report engine (issue 3)."""
