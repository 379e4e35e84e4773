"""Early read: judge variants on the pages whose colorings are cached so far (votes
simulated in memory with the benchmark's voters; split by picture as the cycle does)."""
import sys, time, json
sys.path.insert(0, '/work/main')
import numpy as np, torch
torch.set_num_threads(1)
from pathlib import Path
from models.family import Family
from training.simulate import *
from training.judge import *
sys.path.insert(0, '/work/main/benchmarks')
from retrain_cycle import CachedColorings

taste_name = sys.argv[1]
taste = TASTES[taste_name]; pop = as_population(taste)
fam = Family.load('/work/main/models/family')
cache = CachedColorings(fam, Path('/work/cache/votes_colorings'))
pictures = dataset_pages('/work/datasets', splits=('val', 'test'), seed=0, collections=['noto', 'emojione'])
vote_src = pictures[30:]
pages = [q for p in vote_src for q in (p, p.mirrored())]
order = np.random.default_rng(0).permutation(len(pages)); pages = [pages[i] for i in order]
names = fam.names
rng = np.random.default_rng(0)
voters = make_voters(taste, 60, (1, 2, 3), seed=0)
inputs, W, L, G, values, pid_of = [], [], [], [], {}, []
groups = {}
from PIL import Image
for k, src in enumerate(pages):
    paths = [cache._path(src.image, m) for m in names]
    if not all(p.exists() for p in paths):
        continue
    cols = [Image.open(p).convert('RGB') for p in paths]
    feats = np.stack([taste_features(c, src.truth) for c in cols])
    vals = pop.choice_probabilities(feats)
    g = groups.setdefault(src.group, len(groups))
    base = len(inputs)
    inputs += [judge_inputs(src.image, c, 128, letterbox_pages=True) for c in cols]
    n = min(5, int(rng.geometric(0.3)))
    for vi in rng.choice(len(voters), n, replace=False):
        pick = voters[vi].choose(feats, None, rng)
        for j in range(len(names)):
            if j != pick:
                W.append(base + pick); L.append(base + j); G.append(g)
                values.setdefault(len(W) - 1, (vals[pick], vals[j]))
print('pages', len(inputs) // 5, 'pairs', len(W), flush=True)
data = PairData(torch.stack(inputs), np.array(W), np.array(L), np.array(G))
held = split_pages(data.pages, 0.2, 0)
ho = np.isin(data.pages, list(held))
ceil = np.mean([values[i][0] > values[i][1] for i in np.flatnonzero(ho)])
print('ceiling', round(float(ceil), 4), 'heldout pairs', int(ho.sum()), flush=True)
net, ncfg = base_backbone()
tc = JudgeTrainConfig(steps=300, lr=1e-2, weight_decay=1e-3, seed=0)
for mem_name in sys.argv[2:]:
    memory = None if mem_name == 'none' else default_recall_memory() if mem_name == 'bundled' else RecallMemory.load(mem_name)
    t = time.time()
    judge = BackboneJudge(net, BackboneJudgeConfig(size=128, backbone=ncfg), memory)
    import os
    desc = torch.load(os.environ['DESC'], weights_only=False)['desc'] if os.environ.get('DESC') else describe_inputs(judge, data.inputs)
    if os.environ.get('DESC') and memory is None: desc = desc[:, [0, 1] + list(range(7, desc.shape[1]))]
    torch.save({'desc': desc, 'W': W, 'L': L, 'G': G, 'held': held, 'values': values}, f'/tmp/jr/partial_{taste_name}_{Path(mem_name.split(",")[-1]).name}_{len(mem_name)}.pt')
    if memory is not None:
        for c, name in enumerate(['ll_pix', 'll_reg', 'dist', 'c*ll_reg', 'c*dist']):
            s = desc[:, 2 + c]
            print(' ', name, 'alone', round(float((s[data.winners[ho]] > s[data.losers[ho]]).float().mean()), 4))
    r = train_backbone_judge(data, net, BackboneJudgeConfig(size=128, backbone=ncfg), tc, heldout_pages=held, memory=memory, descriptors=desc)
    print(mem_name, r.metrics(), 'decay', r.judge.chosen_decay, 'describe+fit s', round(time.time() - t), flush=True)
