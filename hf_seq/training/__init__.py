"""Training: the experiment layer (`experiment`), the Trainer pieces (`trainer`), checkpoints (`checkpointing`)."""
