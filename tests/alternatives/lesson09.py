"""Correct solutions for lesson 09, written differently from the reference."""

ALTERNATIVES = {
    "09.num_training_steps": [
        # integer arithmetic: -(-a // b) is ceil(a / b); the epochs stay a float
        "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
        "    if max_steps > 0:\n"
        "        return int(max_steps)\n"
        "    per_epoch = -(-num_examples // batch_size)\n"
        "    return int(math.ceil(num_train_epochs * per_epoch))\n",
        # counting the batches with numpy
        "def num_training_steps(num_examples, batch_size, num_train_epochs, max_steps=-1):\n"
        "    per_epoch = len(np.array_split(np.arange(num_examples),\n"
        "                                   range(batch_size, num_examples, batch_size)))\n"
        "    return max_steps if max_steps > 0 else int(np.ceil(num_train_epochs * per_epoch))\n",
    ],
    "09.epoch_batches": [
        # np.array_split at the batch boundaries
        "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
        "    rng = np.random.default_rng([seed, epoch])\n"
        "    order = rng.permutation(num_examples)\n"
        "    return np.array_split(order, range(batch_size, num_examples, batch_size))\n",
        # a generator built from an explicit SeedSequence, batches collected in a loop
        "def epoch_batches(num_examples, batch_size, epoch, seed):\n"
        "    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed, epoch])))\n"
        "    order = rng.permutation(num_examples)\n"
        "    batches = []\n"
        "    while order.size:\n"
        "        batches.append(order[:batch_size])\n"
        "        order = order[batch_size:]\n"
        "    return batches\n",
    ],
    "09.decay_parameter_names": [
        # a loop that skips the vectors and scalars
        "def decay_parameter_names(params):\n"
        "    names = []\n"
        "    for name, value in params.items():\n"
        "        if np.ndim(value) < 2:\n"
        "            continue\n"
        "        names.append(name)\n"
        "    return names\n",
        # with len(shape)
        "def decay_parameter_names(params):\n"
        "    return [k for k in params if len(np.shape(params[k])) > 1]\n",
    ],
    "09.training_step": [
        # the global norm by hand; scale the gradients only when needed; lr from the
        # exercise of lesson 02 computed first
        "def training_step(params, batch, loss_fn, groups, step, total_steps, args):\n"
        "    lr = scheduled_lr(step, args.learning_rate, args.warmup_steps, total_steps,\n"
        "                      args.lr_scheduler_type)\n"
        "    loss, grads, stats = loss_fn(params, batch)\n"
        "    norm = float(np.sqrt(sum(np.vdot(g, g) for g in grads.values())))\n"
        "    if args.max_grad_norm and norm > args.max_grad_norm:\n"
        "        for g in grads.values():\n"
        "            g *= args.max_grad_norm / (norm + 1e-6)\n"
        "    for names, optimizer in groups:\n"
        "        optimizer.lr = lr\n"
        "        optimizer.step([grads[n] for n in names])\n"
        "    result = dict(stats)\n"
        "    result.update(loss=float(loss), grad_norm=norm, learning_rate=lr)\n"
        "    return result\n",
        # clip_grad_norm with an infinite limit to measure only; new clipped arrays
        "def training_step(params, batch, loss_fn, groups, step, total_steps, args):\n"
        "    loss, grads, stats = loss_fn(params, batch)\n"
        "    if args.max_grad_norm:\n"
        "        norm = clip_grad_norm(list(grads.values()), args.max_grad_norm)\n"
        "    else:\n"
        "        norm = clip_grad_norm(list(grads.values()), float('inf'))\n"
        "    lr = scheduled_lr(step, args.learning_rate, args.warmup_steps, total_steps,\n"
        "                      schedule=args.lr_scheduler_type)\n"
        "    for names, optimizer in groups:\n"
        "        optimizer.lr = lr\n"
        "        optimizer.step([grads[n].copy() for n in names])\n"
        "    return {**stats, 'loss': float(loss), 'grad_norm': norm, 'learning_rate': lr}\n",
    ],
    "09.evaluate_mlm": [
        # logsumexp by hand, everything gathered first and reduced once
        "def evaluate_mlm(predict, batches):\n"
        "    nll, hits = [], []\n"
        "    for batch in batches:\n"
        "        where = np.nonzero(batch['labels'] != -100)\n"
        "        if where[0].size == 0:\n"
        "            continue\n"
        "        logits = predict(batch)[where]\n"
        "        target = batch['labels'][where]\n"
        "        top = logits.max(axis=1)\n"
        "        lse = top + np.log(np.exp(logits - top[:, None]).sum(axis=1))\n"
        "        nll.append(lse - logits[np.arange(len(target)), target])\n"
        "        hits.append(logits.argmax(axis=1) == target)\n"
        "    if not nll:\n"
        "        return {'eval_loss': 0.0, 'eval_perplexity': 1.0, 'eval_accuracy': 0.0}\n"
        "    loss = float(np.concatenate(nll).mean())\n"
        "    return {'eval_loss': loss, 'eval_perplexity': float(np.exp(loss)),\n"
        "            'eval_accuracy': float(np.concatenate(hits).mean())}\n",
        # a weighted average of the batch means with cross_entropy from lesson 01
        "def evaluate_mlm(predict, batches):\n"
        "    means, accs, sizes = [], [], []\n"
        "    for batch in batches:\n"
        "        labels = batch['labels'].reshape(-1)\n"
        "        n = int(np.count_nonzero(labels != -100))\n"
        "        if n:\n"
        "            logits = predict(batch)\n"
        "            flat = logits.reshape(-1, logits.shape[-1])\n"
        "            means.append(cross_entropy(flat, labels))\n"
        "            keep = labels != -100\n"
        "            accs.append(np.mean(flat[keep].argmax(-1) == labels[keep]))\n"
        "            sizes.append(n)\n"
        "    if not sizes:\n"
        "        return {'eval_loss': 0.0, 'eval_perplexity': 1.0, 'eval_accuracy': 0.0}\n"
        "    loss = float(np.average(means, weights=sizes))\n"
        "    return {'eval_loss': loss, 'eval_perplexity': math.exp(loss),\n"
        "            'eval_accuracy': float(np.average(accs, weights=sizes))}\n",
    ],
    "09.optimizer_state": [
        # np.array copies, a dict comprehension per moment
        "def optimizer_state(groups):\n"
        "    state = {}\n"
        "    for names, opt in groups:\n"
        "        state.update({f'{n}.exp_avg': np.array(m) for n, m in zip(names, opt.m)})\n"
        "        state.update({f'{n}.exp_avg_sq': np.array(v) for n, v in zip(names, opt.v)})\n"
        "    state['step'] = np.int64(groups[-1][1].t)\n"
        "    return state\n",
    ],
    "09.load_optimizer_state": [
        # new arrays put in place of the old ones (the optimizer only needs its lists)
        "def load_optimizer_state(groups, state):\n"
        "    step = int(state['step'])\n"
        "    for names, opt in groups:\n"
        "        opt.m = [state[n + '.exp_avg'].copy() for n in names]\n"
        "        opt.v = [state[n + '.exp_avg_sq'].copy() for n in names]\n"
        "        opt.t = step\n",
        # np.copyto
        "def load_optimizer_state(groups, state):\n"
        "    for names, opt in groups:\n"
        "        for i, name in enumerate(names):\n"
        "            np.copyto(opt.m[i], state[f'{name}.exp_avg'])\n"
        "            np.copyto(opt.v[i], state[f'{name}.exp_avg_sq'])\n"
        "        opt.t = state['step'].item()\n",
    ],
    "09.checkpoints_to_delete": [
        # a regular expression, and a slice from the end
        "import re\n"
        "def checkpoints_to_delete(names, save_total_limit):\n"
        "    if save_total_limit is None or save_total_limit <= 0:\n"
        "        return []\n"
        "    found = sorted((int(m.group(1)), n) for n in names\n"
        "                   for m in [re.fullmatch(r'checkpoint-(\\d+)', n)] if m)\n"
        "    doomed = found[:-save_total_limit] if len(found) > save_total_limit else []\n"
        "    return [n for _, n in doomed]\n",
        # sort newest first and keep the head
        "def checkpoints_to_delete(names, save_total_limit):\n"
        "    steps = {n: int(n.split('-', 1)[1]) for n in names\n"
        "             if n.split('-', 1)[0] == 'checkpoint' and n.split('-', 1)[-1].isdigit()}\n"
        "    if not save_total_limit or save_total_limit < 1:\n"
        "        return []\n"
        "    newest_first = sorted(steps, key=lambda n: -steps[n])\n"
        "    return newest_first[save_total_limit:][::-1]\n",
    ],
}
