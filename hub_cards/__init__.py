"""Card templates (model, dataset, Space) shipped as package data of `c2f_hf.hub_cards`."""
