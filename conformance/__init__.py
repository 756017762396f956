"""The conformance suite: checks report files against a ruleset (issue 4; docs/checks.md).

``conformance.checker.check(directory, ruleset)`` returns the findings; the catalogue of checks
is ``conformance.catalogue.CATALOGUE``.
"""
