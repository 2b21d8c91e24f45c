"""Built-in task plugins, installed under the import name ``evals_tasks``.

One file per benchmark family; each file holds functions decorated with ``@evals.task``.
"""
