"""The FCN installer's parts; `fcn-setup` (= `FCN_setup.py`) is its command line.

- `keras_tree`: finding Keras, its version, and paths that stay inside it;
- `lock`: one writer at a time per Keras tree;
- `manifest`: the install record, checked as untrusted input;
- `fileops`: atomic, fsynced writes and removals that can be rolled back;
- `exports`: what the extensions add to Keras, and the marked import block;
- `state`: what is installed: each file's state, backups, a killed run's leftovers;
- `apply`: a planned change applied whole or rolled back;
- `install`, `uninstall`, `status`: the three commands;
- `sources`: where the extension sources are (installed package or checkout);
- `command`: the command line, `fcn_install.command.main`.
"""
