"""Staff-tool models, one module per concern (audit trail, bulk jobs, exports)."""
