"""Names, task names, plug-in interfaces and settings: what every layer may import."""
