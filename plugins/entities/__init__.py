"""Canonical entities: normalisation (:mod:`.normalize`), resolution of aliases
(:mod:`.resolve`) and the built-in ATT&CK alias pack (:mod:`.attack`, data in ``data/attack``)."""
