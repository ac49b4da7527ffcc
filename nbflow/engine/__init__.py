"""The run loop: plan, execute through an executor, retry, gate, record."""
