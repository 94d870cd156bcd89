"""Operations: memory administration, the health/metrics endpoint, metrics and logging."""
