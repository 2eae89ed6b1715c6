"""Training: the fine-tuned model, the Trainer run, and the Optuna search."""
