"""HTTP pieces both listeners use: JSON errors, bounded bodies, health."""
