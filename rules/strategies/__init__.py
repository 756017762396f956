"""Selection strategies beyond the EMRR's four, each in its own module and registered by name in
``rules/selection.py`` (``ASSIGNMENTS``): what the SMETS1 MRR needs, said as data in its rulesets
(docs/rulesets.md "Regimes other than the EMRR")."""
