"""HyperCLOVA-style Korean language-model stack: tokenizers, GPT model, data, pre-training, generation, serving."""
