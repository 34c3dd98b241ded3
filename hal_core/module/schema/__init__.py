"""The FlatBuffer schema of the module file (``module.fbs``) and its flatc-generated readers."""
