"""Graders: extract an answer from model text, compare it with the gold, say why."""
