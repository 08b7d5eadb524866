"""Domain logic of routing: classification, priority and routing rules, overrides."""
