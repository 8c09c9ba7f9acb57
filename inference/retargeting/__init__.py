"""Retargeting: bone maps (by name or by shape), rest alignment, retargeting quality, foot cleanup. Imports from body only."""
