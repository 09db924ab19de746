"""Relation extractors: typed edges between the entities a chunk mentions."""

from docgraph.plugins.relations.rules import RELATION_RULES, RelationRule, extract_relations

__all__ = ["RELATION_RULES", "RelationRule", "extract_relations"]
