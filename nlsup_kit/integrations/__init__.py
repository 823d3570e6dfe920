"""The kit's method inside other libraries' training loops (:mod:`nlsup_kit.integrations.sentence_transformers`)."""
