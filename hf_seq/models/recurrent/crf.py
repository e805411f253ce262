"""A linear-chain conditional random field over per-token scores (Lafferty et al. 2001), the output layer of the
BiLSTM-CRF tagger (Huang et al. 2015; Lample et al. 2016).

score(y | x) = start[y_1] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t] + end[y_T]
p(y | x)     = exp(score(y | x)) / Z(x)

The chain runs over the real tokens of each row (`mask`), wherever they sit: left and right padding give the same
result as the row alone. Positions that are real but unlabelled (label -100, e.g. sub-word pieces after the first)
are marginalised out of the likelihood instead of being forced to a tag.

The dynamic programmes (forward, backward, Viterbi) step over time, as any CRF does; each step is one batched
(batch, labels, labels) log-sum-exp or max, so the loop costs O(seq_len) small kernels next to the fused recurrent
encoder underneath.
"""

import math

import torch
from torch import nn

_NEG = -1e4  # "impossible" in log space; finite so that 0 * _NEG and _NEG - _NEG stay finite


def _step_forward(alpha, emissions_t, transitions):
    """alpha (B, L) at t-1 -> (B, L) at t: logsumexp_i alpha[i] + trans[i, j] + e_t[j]."""
    return torch.logsumexp(alpha.unsqueeze(2) + transitions.unsqueeze(0), dim=1) + emissions_t


class LinearChainCRF(nn.Module):
    """Transition scores and the three dynamic programmes of a linear-chain CRF with `num_labels` states."""

    def __init__(self, num_labels: int):
        super().__init__()
        self.num_labels = num_labels
        self.transitions = nn.Parameter(torch.zeros(num_labels, num_labels))  # [from, to]
        self.start_transitions = nn.Parameter(torch.zeros(num_labels))
        self.end_transitions = nn.Parameter(torch.zeros(num_labels))

    def _forward_alpha(self, emissions, mask):
        """log Z (B,) and the forward table (T, B, L); rows without any real token get log Z = 0."""
        B, T, L = emissions.shape
        alpha = emissions.new_full((B, L), _NEG)
        started = torch.zeros(B, dtype=torch.bool, device=emissions.device)
        alphas = []
        for t in range(T):
            m = mask[:, t].unsqueeze(1)
            first = self.start_transitions + emissions[:, t]
            nxt = torch.where(started.unsqueeze(1), _step_forward(alpha, emissions[:, t], self.transitions), first)
            alpha = torch.where(m, nxt, alpha)
            started = started | mask[:, t]
            alphas.append(alpha)
        log_z = torch.logsumexp(alpha + self.end_transitions, dim=1)
        return log_z.masked_fill(~started, 0.0), torch.stack(alphas)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z(x) for each row, (batch,)."""
        return self._forward_alpha(emissions, mask)[0]

    def neg_log_likelihood(self, emissions: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """-log p(labels | x) summed over the batch; labels of -100 at real positions are marginalised out."""
        observed = labels != -100
        allowed = torch.ones_like(emissions, dtype=torch.bool)
        gold = nn.functional.one_hot(labels.clamp(min=0), self.num_labels).bool()
        allowed = torch.where(observed.unsqueeze(-1), gold, allowed)
        clamped = emissions.masked_fill(~allowed, _NEG)
        log_z = self.log_partition(emissions, mask)
        log_gold = self.log_partition(clamped, mask)
        return (log_z - log_gold).sum()

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log p(y_t = l | x), (batch, seq_len, labels), by forward-backward; padded rows are uniform."""
        B, T, L = emissions.shape
        log_z, alphas = self._forward_alpha(emissions, mask)
        beta = self.end_transitions.expand(B, L)
        betas = [None] * T
        for t in range(T - 1, -1, -1):
            betas[t] = beta
            # beta_{t-1}[i] = logsumexp_j trans[i, j] + e_t[j] + beta_t[j], only across a real token t
            prev = torch.logsumexp(self.transitions.unsqueeze(0) + (emissions[:, t] + beta).unsqueeze(1), dim=2)
            beta = torch.where(mask[:, t].unsqueeze(1), prev, beta)
        # between two real tokens, padding in the middle never happens (rows are contiguous runs of real tokens)
        log_marg = alphas.transpose(0, 1) + torch.stack(betas, dim=1) - log_z.view(B, 1, 1)
        uniform = log_marg.new_full((), -math.log(L))
        return torch.where(mask.unsqueeze(-1), log_marg, uniform)

    def viterbi_decode(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The most probable label sequence, (batch, seq_len) with -100 at padded positions."""
        B, T, L = emissions.shape
        score = emissions.new_full((B, L), _NEG)
        started = torch.zeros(B, dtype=torch.bool, device=emissions.device)
        pointers = []
        arange = torch.arange(L, device=emissions.device).expand(B, L)
        for t in range(T):
            m = mask[:, t].unsqueeze(1)
            best, arg = (score.unsqueeze(2) + self.transitions.unsqueeze(0)).max(dim=1)
            nxt = torch.where(started.unsqueeze(1), best + emissions[:, t], self.start_transitions + emissions[:, t])
            # a padded step points to itself, so back-tracking passes through padding unchanged
            pointers.append(torch.where(m & started.unsqueeze(1), arg, arange))
            score = torch.where(m, nxt, score)
            started = started | mask[:, t]
        last = (score + self.end_transitions).argmax(dim=1)
        path = [None] * T
        for t in range(T - 1, -1, -1):
            path[t] = last
            last = pointers[t].gather(1, last.unsqueeze(1)).squeeze(1)
        tags = torch.stack(path, dim=1)
        return tags.masked_fill(~mask, -100)
