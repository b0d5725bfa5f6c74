"""Model families of `c2f_hf`; each folder is a self-contained bundle that Hub remote code copies as it is."""
