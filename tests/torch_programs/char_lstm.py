# A character-level LSTM language model (embedding, 2-layer LSTM, batch_first), trained with Adam.
import numpy as np
import torch
import torch.nn as nn

text = "hello world, hello lstm. the quick brown fox jumps over the lazy dog. " * 4
chars = sorted(set(text))
char2idx = {c: i for i, c in enumerate(chars)}
encoded = np.array([char2idx[c] for c in text], dtype=np.int64)
seq_len, batch_size = 10, 3


class CharLSTM(nn.Module):
    def __init__(self, vocab_size, embed_dim=12, hidden_dim=20, num_layers=2):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, num_layers=num_layers, batch_first=True)
        self.fc = nn.Linear(hidden_dim, vocab_size)

    def forward(self, x, hidden=None):
        emb = self.embedding(x)
        out, hidden = self.lstm(emb, hidden)
        logits = self.fc(out)
        return logits, hidden


def batches():
    span = batch_size * seq_len
    for start in range(0, len(encoded) - span - 1, span):
        chunk = encoded[start:start + span + 1]
        x = torch.from_numpy(chunk[:-1].reshape(batch_size, seq_len).copy())
        y = torch.from_numpy(chunk[1:].reshape(batch_size, seq_len).copy())
        yield x, y


def make_lstm():
    return CharLSTM(len(chars))


def train_lstm(model, steps):
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    criterion = nn.CrossEntropyLoss()
    losses, hidden = [], None
    while len(losses) < steps:
        for x, y in batches():
            if len(losses) == steps:
                break
            if hidden is not None:
                hidden = tuple(h.detach() for h in hidden)
            optimizer.zero_grad()
            logits, hidden = model(x, hidden)
            loss = criterion(logits.reshape(-1, len(chars)), y.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            losses.append(loss.item())
    # sample greedily from the trained model
    model.eval()
    with torch.no_grad():
        x = torch.tensor([[char2idx["h"]]])
        hidden, generated = None, []
        for _ in range(15):
            logits, hidden = model(x, hidden)
            next_index = logits[0, -1].argmax().item()
            generated.append(next_index)
            x = torch.tensor([[next_index]])
    return losses + generated
