"""Scoring: turn an Opportunity into a ScoredOpportunity with an execute/skip decision."""
