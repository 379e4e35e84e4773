import sys, os; sys.path.insert(0,'/work/main'); sys.path.insert(0,'/tmp/oldj')
import numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from models.family import Family
from training.simulate import *
import training.judge as J
import judge_old as O
sys.path.insert(0, '/work/main/benchmarks')
from retrain_cycle import CachedColorings
from PIL import Image
taste_name = sys.argv[1]
taste = TASTES[taste_name]; pop = as_population(taste)
fam = Family.load('/work/main/models/family')
cache = CachedColorings(fam, Path('/work/cache/votes_colorings'))
pictures = dataset_pages('/work/datasets', splits=('val', 'test'), seed=0, collections=['noto', 'emojione'])
pages = [q for p in pictures[30:] for q in (p, p.mirrored())]
order = np.random.default_rng(0).permutation(len(pages)); pages = [pages[i] for i in order]
names = fam.names
rng = np.random.default_rng(0)
voters = make_voters(taste, 60, (1, 2, 3), seed=0)
W, L, G, values, groups, n = [], [], [], {}, {}, 0
for src in pages:
    paths = [cache._path(src.image, m) for m in names]
    if not all(p.exists() for p in paths):
        continue
    cols = [Image.open(p).convert('RGB') for p in paths]
    feats = np.stack([taste_features(c, src.truth) for c in cols])
    vals = pop.choice_probabilities(feats)
    g = groups.setdefault(src.group, len(groups))
    base = 5 * n; n += 1
    k = min(5, int(rng.geometric(0.3)))
    for vi in rng.choice(len(voters), k, replace=False):
        pick = voters[vi].choose(feats, None, rng)
        for j in range(5):
            if j != pick:
                W.append(base + pick); L.append(base + j); G.append(g); values[len(W) - 1] = (vals[pick], vals[j])
W, L, G = map(np.array, (W, L, G))
desc = torch.load(sys.argv[2], weights_only=False)['desc']
assert len(desc) == 5 * n, (len(desc), n)
held = J.split_pages(G, 0.2, 0); ho = np.isin(G, list(held))
print(taste_name, 'pages', n, 'pairs', len(W), 'heldout pairs', int(ho.sum()), 'ceiling', round(float(np.mean([values[i][0] > values[i][1] for i in np.flatnonzero(ho)])), 4))
data = J.PairData(torch.zeros(len(desc), 4, 8, 8), W, L, G)
net, ncfg = J.base_backbone()
tc = J.JudgeTrainConfig(steps=300, lr=1e-2, weight_decay=1e-3, seed=0)
nomem = desc[:, [0, 1] + list(range(7, desc.shape[1]))]
r = O.train_backbone_judge(data, net, O.BackboneJudgeConfig(size=128, backbone=ncfg), tc, heldout_pages=held, memory=None, descriptors=nomem)
print('before: BackboneJudge', r.metrics()['heldout_accuracy'], 'train', r.metrics()['train_accuracy'])
r = J.train_backbone_judge(data, net, J.BackboneJudgeConfig(size=128, backbone=ncfg), tc, heldout_pages=held, memory=None, descriptors=nomem)
print('after, no memory', r.metrics()['heldout_accuracy'], 'decay', r.judge.chosen_decay)
mem = J.RecallMemory.empty({"pages": 1, "dim": 128, "side": 32, "bins": 15, "k": 8, "temperature": 0.05, "mirror": True, "encoder": {"width": 16, "dim": 128}})
r = J.train_backbone_judge(data, net, J.BackboneJudgeConfig(size=128, backbone=ncfg), tc, heldout_pages=held, memory=mem, descriptors=desc)
print('after, recall', r.metrics()['heldout_accuracy'], 'train', r.metrics()['train_accuracy'], 'decay', r.judge.chosen_decay)
