"""Named-entity recognition for cyber-security text.

* :mod:`.conll` - CoNLL reading, DocBin conversion, entity-level scoring.
* :mod:`.train` - reproducible spaCy training recipe (``config.cfg``, fixed seed).
* :mod:`.model` - where the trained pipeline lives and :func:`load_ner_model`.
* :mod:`.pack` - the cyber/ICS entity pack (regex + gazetteer rules) and
  :func:`find_mentions`, which merges model entities with rule matches.
* :mod:`.cli` - ``eval_file`` / ``print_report`` behind ``docgraph ner eval FILE``.
"""

LABELS: tuple[str, ...] = ("Indicator", "Malware", "Organization", "System", "Vulnerability")
