"""Alert classification: rules files, Alertmanager matchers and the evidence scorer.

Public API::

    rules = load_rules([Path("rules")])            # RuleSet, raises ConfigError
    errors = rules.check_runbooks(index)           # list[ConfigError]
    classifier = EvidenceClassifier(rules, index)  # a router.pipeline.Classifier
    classification = classifier.classify(alert)
"""

from router.classify.classifier import EmptyRunbookIndex, EvidenceClassifier
from router.classify.matchers import Matcher, MatcherError, parse_matcher, parse_matchers
from router.classify.rules import GENERIC_PLAYBOOK, Rule, RuleSet, load_rules

__all__ = [
    "GENERIC_PLAYBOOK",
    "EmptyRunbookIndex",
    "EvidenceClassifier",
    "Matcher",
    "MatcherError",
    "Rule",
    "RuleSet",
    "load_rules",
    "parse_matcher",
    "parse_matchers",
]
