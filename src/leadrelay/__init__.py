"""LeadRelay: the marketing-to-sales lead hand-off, run by one agreed playbook."""

__version__ = "0.1.0"
