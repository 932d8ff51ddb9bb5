"""The models the experiments train: backbones, the nine experiments' models, starting weights."""
