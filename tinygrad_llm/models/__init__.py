"""The models, built from nn's layers and the engine's ops.

    transformer.py  the shared parts: attention, MLP, the four blocks, GPT-2's initialisation, the token-id check
    gpt.py          GPT, a decoder-only language model (nanoGPT's names and shapes)
    bert.py         BERT, an encoder pretrained by masked-language modelling and next-sentence prediction
    hf_bert.py      Hugging Face's BertModel, to run real pretrained checkpoints (all-MiniLM-L6-v2, ...)
    seq2seq.py      an encoder-decoder transformer, with greedy and beam-search decoding
    rnn.py          RNN, LSTM and GRU cells and layers, and a character-level LSTM
    sampling.py     temperature, top-k and top-p sampling of the next token
"""
