"""pix2pix training: the generator learns from L1 plus a PatchGAN judge.

Same loop, data, checkpoints and snapshots as the encoder-decoder
(`training.train.train` runs `GanSteps` for pix2pix members); only the step differs.
The judge (`PatchDiscriminator`) scores overlapping patches of (page L, coloring)
pairs: "is this coloring of this page real?", which punishes the washed-out average
colors that L1 alone settles on.

Losses (Isola et al.): D minimizes BCE(D(page, real), 1) + BCE(D(page, G(page)), 0)
(halved); G minimizes gan_adv_weight * BCE(D(page, G(page)), 1) + gan_l1_weight * L1.
Both use Adam(beta1=0.5). On CUDA each has its own GradScaler under float16 autocast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn import functional as F

from models.pix2pix import DiscriminatorConfig, PatchDiscriminator
from training.config import Dist, TrainConfig, lr_at, unwrap

if TYPE_CHECKING:
    from torch.utils.data import Dataset


class GanSteps:
    def __init__(self, cfg: TrainConfig, net: nn.Module, data: Dataset[Any], device: torch.device,
                 dist: Dist) -> None:
        self.cfg = cfg
        self.device = device
        disc_cfg = DiscriminatorConfig(**{"in_channels": 1 + cfg.out_channels, **cfg.disc})
        disc = PatchDiscriminator(disc_cfg).to(device)
        if device.type == "cuda" and cfg.channels_last:
            disc = disc.to(memory_format=torch.channels_last)
        self.gen: nn.Module = net
        self.disc: nn.Module = disc
        if dist.world > 1:
            ids = [device.index] if device.type == "cuda" else None
            self.gen = nn.parallel.DistributedDataParallel(net, device_ids=ids)
            self.disc = nn.parallel.DistributedDataParallel(disc, device_ids=ids)
        self.opt_g = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.use_amp = cfg.amp and device.type == "cuda"
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def _autocast(self) -> torch.autocast:
        return torch.autocast(device_type=self.device.type, dtype=torch.float16,
                              enabled=self.use_amp)

    def step(self, step: int, page_l: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
        cfg = self.cfg
        for group in self.opt_g.param_groups:
            group["lr"] = lr_at(step, cfg, cfg.lr)
        for group in self.opt_d.param_groups:
            group["lr"] = lr_at(step, cfg, cfg.disc_lr)
        real = target if cfg.out_channels == 3 else target[:, 1:]  # (B, C, H, W)

        with self._autocast():
            fake = self.gen(page_l)  # (B, C, H, W) network scale

        # Judge: real pairs -> 1, generated pairs -> 0 (generator frozen: fake detached).
        # One call on both halves, so DDP sees one forward per backward.
        b = page_l.shape[0]
        self._judge_trainable(True)
        with self._autocast():
            logits = self.disc(torch.cat((page_l, page_l)), torch.cat((real, fake.detach())))
            logits = logits.float()  # (2B, 1, h, w) patch logits
            labels = torch.cat((torch.ones_like(logits[:b]), torch.zeros_like(logits[b:])))
            loss_d = F.binary_cross_entropy_with_logits(logits, labels)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()

        # Generator: fool the (frozen) judge and stay close to the true colors.
        self._judge_trainable(False)
        with self._autocast():
            d_fake = unwrap(self.disc)(page_l, fake).float()
            adv = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
            l1 = (fake.float() - real).abs().mean()
            loss_g = cfg.gan_adv_weight * adv + cfg.gan_l1_weight * l1
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(loss_g).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self._judge_trainable(True)
        return {"g_adv": float(adv.detach()) * cfg.gan_adv_weight,
                "g_l1": float(l1.detach()) * cfg.gan_l1_weight,
                "d": float(loss_d.detach())}

    def _judge_trainable(self, on: bool) -> None:
        for p in unwrap(self.disc).parameters():
            p.requires_grad_(on)

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": unwrap(self.gen).state_dict(),
            "disc": unwrap(self.disc).state_dict(),
            "optimizer": self.opt_g.state_dict(),
            "disc_optimizer": self.opt_d.state_dict(),
            "scaler": self.scaler_g.state_dict(),
            "disc_scaler": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        unwrap(self.gen).load_state_dict(state["model"])
        unwrap(self.disc).load_state_dict(state["disc"])
        self.opt_g.load_state_dict(state["optimizer"])
        self.opt_d.load_state_dict(state["disc_optimizer"])
        self.scaler_g.load_state_dict(state["scaler"])
        self.scaler_d.load_state_dict(state["disc_scaler"])

    @property
    def net(self) -> nn.Module:
        return unwrap(self.gen)
