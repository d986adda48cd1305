"""The verbs: each composes listing, transfer and reporting and returns a JobReport."""
