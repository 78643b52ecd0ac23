"""Words of the reviewer-facing pages in English and Chinese.

Domain terms come from the glossary (``config/glossary.yaml``); this catalogue holds the
pages' own sentences, headings and column names, each in both languages (a test holds
that every key has both). Chinese entries use the glossary's words, and the glossary
check (``postloan.glossary.untranslated``) runs on every rendered Chinese page.
"""

from __future__ import annotations

from postloan.glossary import check_lang

TEXTS: dict[str, tuple[str, str]] = {
    # --- page frame
    "pack_title": ("Validation pack: {name} v{version}", "模型验证报告：{name} v{version}"),
    "decision_title": ("Validation pack: the decision layer", "模型验证报告：决策层"),
    "customer_title": ("Customer {customer} as of {as_of}", "客户{customer}（观察日{as_of}）"),
    "generated": ("Generated {when} by postloan {version}; self-contained: readable offline.",
                  "由 postloan {version} 于 {when} 生成；单文件，可离线阅读。"),
    "contents": ("Contents", "目录"),
    "footer": ("postloan validation pack. Figures are embedded PNG images; the page needs no "
               "network access and allows none.",
               "postloan 模型验证报告。图表以 PNG 内嵌；本页无需也不允许任何网络访问。"),
    "not_available": ("not available", "无"),
    "figure_missing": ("Figure not available: {what}.", "图表不可用：{what}。"),
    "yes": ("yes", "是"), "no": ("no", "否"),
    # --- model pack sections
    "s_purpose": ("Purpose and use", "用途与使用"),
    "s_data": ("Data, windows and sample sizes", "数据、时间窗与样本量"),
    "s_features": ("Features and their definitions", "特征及其定义"),
    "s_performance": ("Out-of-time performance, month by month", "跨时间表现（逐月）"),
    "s_calibration": ("Calibration", "校准"),
    "s_stability": ("Stability", "稳定性"),
    "s_challengers": ("Challengers side by side", "挑战者模型对比"),
    "s_sensitivity": ("Sensitivity: stress scenarios", "敏感性：压力情景"),
    "s_segments": ("Results by segment", "分客群结果"),
    "s_drivers": ("What drives the model", "模型驱动因素"),
    "s_limitations": ("Limitations and open findings", "局限与待解决问题"),
    "s_version": ("Version, data hash and training configuration", "版本、数据哈希与训练配置"),
    "s_signoff": ("Sign-off", "签批"),
    # --- purpose
    "purpose_default_risk": (
        "Estimates, for every customer with an open loan, the probability of default: "
        "becoming 90+ days past due on any loan within 12 months of the as-of date. Used "
        "for early warning (risk grade, expected loss, warning level) and customer "
        "prioritisation (payment reminders, restructuring offers).",
        "对每位有在贷的客户，估计其违约概率：观察日后12个月内任一笔贷款逾期90天以上。"
        "用于预警（风险等级、预期损失、预警等级）和客户优先级（还款提醒、重组方案）。"),
    "purpose_churn": (
        "Estimates, for every customer with an open loan, the probability of churn within "
        "6 months: no open loan left (prepaid and closed, or not renewed) without a default "
        "in between. Used for customer prioritisation: retention offers.",
        "对每位有在贷的客户，估计其6个月内流失的概率：期间未违约，但已无在贷（提前结清或"
        "未续贷）。用于客户优先级：挽留优惠。"),
    "purpose_satisfaction": (
        "Estimates, for every customer with an open loan, the probability of being "
        "dissatisfied within 3 months: a complaint or a survey score of 2 or less. Used for "
        "customer prioritisation (service-recovery calls) and the pressure rule that holds "
        "back risk contacts from customers likely to be unhappy with them.",
        "对每位有在贷的客户，估计其3个月内不满意的概率：发生投诉或满意度调查评分不高于2分。"
        "用于客户优先级（服务补救回访），以及施压规则：对可能因此不满的客户暂缓风险类联系。"),
    "label_default_12m": (
        "1 if any of the customer's loans reaches 90+ days past due in the 12 months after "
        "the as-of date; not used if already 90+ days past due at the as-of date or if the "
        "12 months run past the data.",
        "观察日后12个月内任一笔贷款逾期90天以上为1，否则为0；观察日已逾期90天以上，或12个月"
        "超出数据范围的，不参与。"),
    "label_churn_6m": (
        "1 if the customer has no open loan 6 months after the as-of date, with no default "
        "or charge-off in between; not used where the 6 months run past the data.",
        "观察日后6个月已无在贷、且期间未违约或核销为1，否则为0；6个月超出数据范围的不参与。"),
    "label_dissatisfied_3m": (
        "1 if the customer files a complaint or scores a survey 2 or less in the 3 months "
        "after the as-of date; not used where the 3 months run past the data.",
        "观察日后3个月内发生投诉或满意度调查评分不高于2分为1，否则为0；超出数据范围的不参与。"),
    "predicts": ("Predicts", "预测目标"),
    "users": ("Users", "使用者"),
    "users_text": (
        "risk, retention and service teams through the batch scores, early warnings and the "
        "outreach queue; other systems through the HTTP scoring service; reviewers through "
        "this pack.",
        "风险、挽留和服务团队通过批量评分、预警和联系队列使用；其他系统通过 HTTP 评分服务"
        "调用；验证与审阅人员通过本报告审阅。"),
    "synthetic": ("The book behind this model is synthetic (postloan.simulation): the numbers "
                  "show the method, not a real portfolio.",
                  "本模型所用数据为模拟数据（postloan.simulation）：数字展示方法，不代表真实"
                  "资产组合。"),
    # --- data
    "split": ("split", "样本"), "as_of_dates": ("as-of dates", "观察日"),
    "rows_labelled": ("rows (labelled)", "样本量（有标签）"),
    "train": ("training", "训练"), "valid": ("validation", "验证"),
    "oot": ("out-of-time", "跨时间"),
    "holdout_text": (
        "Training uses 4 of 5 customers at the training dates; validation (early stopping "
        "and calibration) the fifth customer at the training and validation dates, so no "
        "customer's outcome is in both. The out-of-time sample holds every customer at "
        "later dates.",
        "训练使用训练观察日上五分之四的客户；验证（提前停止与校准）使用其余五分之一的客户，"
        "因此没有客户的结果同时出现在两者中。跨时间样本包含之后观察日上的全部客户。"),
    "label": ("label", "标签"), "oot_base_rate": ("out-of-time base rate", "跨时间样本基准率"),
    "book_hash": ("book content hash", "数据内容哈希"),
    "train_hash": ("training data hash", "训练数据哈希"),
    "book_window": ("book window", "数据时间窗"),
    "table_rows": ("Tables of the book", "数据表"),
    "table": ("table", "表"), "rows": ("rows", "行数"),
    # --- features
    "feature": ("feature", "特征"), "kind": ("kind", "类型"),
    "definition": ("definition", "定义"), "monotone": ("monotone", "单调约束"),
    "shap_rank": ("SHAP rank", "SHAP 排名"),
    "numeric": ("numeric", "数值"), "categorical": ("categorical", "类别"),
    "mono_up": ("never lowers the score as it rises", "取值升高时分数不降"),
    "mono_down": ("never raises the score as it rises", "取值升高时分数不升"),
    "features_text": ("{n} features built by one feature function from the point-in-time "
                      "snapshot; definitions from the data contract. No personal data "
                      "(names, phones, ID numbers, addresses) is a feature.",
                      "共{n}个特征，由同一特征函数基于时点快照计算；定义来自数据契约。个人"
                      "信息（姓名、电话、证件号、地址）不作为特征。"),
    # --- performance
    "as_of": ("as-of date", "观察日"), "n": ("customers", "客户数"),
    "n_pos": ("positives", "正样本"), "base_rate": ("base rate", "基准率"),
    "mean_pred": ("mean prediction", "平均预测"),
    "interval_95": ("95% interval", "95%置信区间"),
    "oracle_auc": ("oracle AUC", "真实概率上限 AUC"),
    "perf_text": (
        "Each as-of date of the out-of-time sample on its own: discrimination (AUC, KS, "
        "Gini = 2 AUC - 1) with 95% bootstrap confidence intervals ({n_boot} resamples of "
        "the customers, seeded).",
        "跨时间样本逐个观察日评估：区分度（AUC、KS、Gini = 2 AUC - 1）及其95%自助法置信区间"
        "（对客户重抽样{n_boot}次，固定随机种子）。"),
    "oracle_text": ("On a simulated book the simulator knows each customer's true probability "
                    "(the oracle): no model ranks better on average.",
                    "在模拟数据上，模拟器知道每位客户的真实概率（真实概率上限）：平均而言，"
                    "任何模型的排序能力都不会超过它。"),
    "no_oracle": ("No truth table: the oracle exists only for simulated books.",
                  "无真值表：真实概率上限只存在于模拟数据。"),
    "monthly_missing": ("The month-by-month evaluation was not computed (no labelled "
                        "out-of-time rows in the book read).",
                        "未计算逐月评估（所读数据中无带标签的跨时间样本）。"),
    "fig_monthly": ("AUC and KS by as-of date (bands: 95% intervals)",
                    "各观察日的 AUC 与 KS（阴影：95%置信区间）"),
    "overall": ("Whole out-of-time sample", "整个跨时间样本"),
    "fig_roc": ("ROC curve (out-of-time)", "ROC曲线（跨时间）"),
    "fig_ks": ("KS: cumulative score distributions (out-of-time)", "KS：分数累积分布（跨时间）"),
    "fig_lift": ("Lift by score decile (out-of-time)", "按分数十分位的提升度（跨时间）"),
    # --- calibration
    "cal_text": ("Observed rate against mean predicted probability per score decile of the "
                 "out-of-time sample; ECE = mean |observed - predicted| weighted by bin size.",
                 "跨时间样本按分数十分位比较实际发生率与平均预测概率；ECE 为按箱样本量加权的"
                 "|实际 - 预测|均值。"),
    "fig_cal": ("Calibration by score decile (out-of-time)", "按分数十分位的校准（跨时间）"),
    "decile": ("decile", "十分位"), "observed_rate": ("observed rate", "实际发生率"),
    "ece": ("calibration error (ECE)", "校准误差（ECE）"),
    # --- stability
    "stab_text": (
        "Score PSI of each later as-of date against the last {n_ref} training dates, and the CSI "
        "(the same index on a feature) of the top features. Bands: < {watch} stable, "
        "{watch}-{shifted} watch, > {shifted} shifted.",
        "各观察日相对最后{n_ref}个训练观察日的分数 PSI，以及主要特征的 CSI（特征上的同一指数）。"
        "区间：< {watch} 稳定，{watch}-{shifted} 关注，> {shifted} 偏移。"),
    "score_psi": ("score PSI", "分数 PSI"), "status": ("status", "状态"),
    "stable": ("stable", "稳定"), "watch": ("watch", "关注"), "shifted": ("shifted", "偏移"),
    "fig_psi": ("Score PSI by as-of date", "各观察日的分数 PSI"),
    "csi_title": ("Top features: CSI by as-of date", "主要特征：各观察日 CSI"),
    "stab_missing": ("Stability was not computed (no book was read).",
                     "未计算稳定性（未读取数据）。"),
    # --- challengers
    "model_col": ("model", "模型"),
    "challenger_text": (
        "The champion against its challengers on the same out-of-time rows: the logistic "
        "regression fitted on the same features in the same run, and the points scorecard "
        "(WOE bins) when one was trained.",
        "冠军模型与挑战者模型在同一跨时间样本上对比：同一次训练中基于相同特征拟合的逻辑回归，"
        "以及已训练时的积分评分卡（WOE 分箱）。"),
    "lightgbm": ("LightGBM (champion)", "LightGBM（冠军模型）"),
    "logreg": ("logistic regression", "逻辑回归"), "scorecard": ("scorecard", "评分卡"),
    "scorecard_missing": ("Scorecard not trained (run `postloan scorecard --model {model}`).",
                          "评分卡未训练（运行 `postloan scorecard --model {model}`）。"),
    "scorecard_points": ("Scorecard points table", "评分卡分值表"),
    "bin": ("bin", "分箱"), "woe": ("WOE", "WOE"), "points": ("points", "分值"),
    "metric": ("metric", "指标"), "difference": ("difference", "差异"),
    # --- sensitivity
    "sens_text": (
        "The out-of-time customers at {as_of} scored again under each shipped stress "
        "scenario (regional unemployment, rates, income shocks applied to their snapshot).",
        "将观察日{as_of}的跨时间客户，在每个内置压力情景下（对快照施加地区失业率、利率、"
        "收入冲击）重新评分。"),
    "scenario": ("stress scenario", "压力情景"), "description": ("description", "说明"),
    "mean_before": ("mean score before", "情景前平均分"),
    "mean_after": ("mean score after", "情景后平均分"),
    "change": ("relative change", "相对变化"),
    "p90_after": ("90th percentile after", "情景后第90百分位"),
    "share_up": ("share whose score rose > 50%", "分数上升超过50%的客户占比"),
    "sens_missing": ("Sensitivity was not computed.", "未计算敏感性。"),
    # --- segments
    "seg_text": ("Discrimination (AUC) and calibration (mean prediction against the observed "
                 "rate) of the out-of-time sample by region, main product and age band.",
                 "跨时间样本按地区、主要产品和年龄段的区分度（AUC）与校准（平均预测对比实际"
                 "发生率）。"),
    "segment": ("segment", "客群"), "dim_region": ("region", "地区"),
    "dim_main_product": ("main product", "主要产品"), "dim_age_band": ("age band", "年龄段"),
    "gap": ("mean prediction - rate", "平均预测 - 实际"),
    "seg_missing": ("Segment results were not logged for this run.", "本次训练未记录分客群结果。"),
    # --- drivers
    "drivers_text": ("Mean absolute SHAP contribution (log-odds) per feature on the "
                     "out-of-time sample: what moves the model's scores most.",
                     "跨时间样本上各特征的平均绝对 SHAP 贡献（对数几率）：最影响模型分数的"
                     "因素。"),
    "mean_abs_shap": ("mean |SHAP|", "平均 |SHAP|"),
    "fig_shap": ("Mean |SHAP| (top 15)", "平均 |SHAP|（前15）"),
    # --- limitations
    "limits": ("Known limitations", "已知局限"),
    "findings": ("Open findings (computed from this pack)", "待解决问题（由本报告计算）"),
    "no_findings": ("No open finding.", "无待解决问题。"),
    "lim_postloan": ("Post-loan use only: not built or validated for credit approval at "
                     "origination.", "仅用于贷后管理：未针对贷款审批开发或验证。"),
    "lim_levels": ("When the portfolio or the economy moves, the ranking usually holds longer "
                   "than the probability levels: re-check calibration before relying on "
                   "levels, and re-validate when the score PSI exceeds {shifted}.",
                   "资产组合或经济环境变化时，排序通常比概率水平更持久：依赖概率水平前需复核"
                   "校准；分数 PSI 超过 {shifted} 时应重新验证。"),
    "lim_window": ("The out-of-time test covers the as-of dates listed in the data section "
                   "only; no later month and no macro shock beyond the stress scenarios.",
                   "跨时间检验仅覆盖数据部分所列观察日；未覆盖之后的月份，也未覆盖压力情景之外"
                   "的宏观冲击。"),
    "lim_shap": ("Explanations (SHAP contributions, reason codes) describe how the model uses "
                 "its inputs, not what causes the outcome.",
                 "解释（SHAP 贡献、原因码）描述模型如何使用输入，而非结果的因果。"),
    "lim_fair": ("Age and region are model inputs; where they are protected characteristics, "
                 "local fair-lending rules apply (see results by segment).",
                 "年龄和地区是模型输入；如属受保护特征，须遵守当地公平信贷规定（见分客群结果）。"),
    "f_auc_low": ("{as_of}: AUC {auc} is {drop} below the whole-sample AUC.",
                  "{as_of}：AUC {auc}，比整体样本低 {drop}。"),
    "f_psi": ("{as_of}: score PSI {psi} ({status}).", "{as_of}：分数 PSI {psi}（{status}）。"),
    "f_csi": ("`{feature}`: CSI {psi} at {as_of} ({status}).",
              "`{feature}`：{as_of} CSI {psi}（{status}）。"),
    "f_ece": ("Out-of-time calibration error {ece} exceeds the gate's bound {bound}.",
              "跨时间校准误差 {ece} 超过门槛 {bound}。"),
    "f_challenger": ("The {name} reaches AUC {auc}, not below the champion's {champ}.",
                     "{name}的 AUC 为 {auc}，不低于冠军模型的 {champ}。"),
    "f_segment": ("{dim}: AUC spread {spread} across segments (> 0.05).",
                  "{dim}：各客群 AUC 极差 {spread}（> 0.05）。"),
    "f_oracle": ("Model AUC is {ratio} of the oracle's.", "模型 AUC 为真实概率上限的 {ratio}。"),
    "f_stress": ("Under `{scenario}` the mean score rises {change}.",
                 "在 `{scenario}` 情景下平均分上升 {change}。"),
    "f_scorecard": ("No scorecard challenger was trained.", "未训练评分卡挑战者模型。"),
    # --- version
    "registered": ("registered model", "注册模型"), "version": ("version", "版本"),
    "aliases": ("aliases", "别名"), "run": ("MLflow run", "MLflow 运行"),
    "git_commit": ("git commit", "代码提交"), "trained_at": ("created", "创建时间"),
    "family": ("model family", "模型族"), "calibration_method": ("calibration", "校准方法"),
    "params": ("Training parameters", "训练参数"), "param": ("parameter", "参数"),
    "value": ("value", "取值"),
    "config": ("Training configuration (training.yaml)", "训练配置（training.yaml）"),
    "gate": ("Promotion gate", "晋升门槛"),
    # --- sign-off
    "signoff_text": ("To be completed by hand or in the lender's workflow tool.",
                     "由人工或在机构流程系统中填写。"),
    "role": ("role", "角色"), "name": ("name", "姓名"), "date": ("date", "日期"),
    "decision_col": ("decision", "结论"), "signature": ("signature", "签名"),
    "r_developer": ("model developer", "模型开发"), "r_validator": ("model validation", "模型验证"),
    "r_owner": ("model owner (business)", "模型负责人（业务）"),
    "r_committee": ("risk committee", "风险管理委员会"),
    # --- decision layer
    "s_d_purpose": ("What the decision layer does", "决策层的作用"),
    "s_d_uplift": ("Uplift models: effect of each action", "增量效应模型：各动作的效果"),
    "s_d_replay": ("Policy replay", "策略回放"),
    "s_d_rules": ("Handbook rules in force", "现行手册规则"),
    "s_d_capacity": ("Capacities and costs", "联系名额与成本"),
    "s_d_limits": ("Limitations and open findings", "局限与待解决问题"),
    "d_purpose_text": (
        "For each customer the decision layer estimates, for every allowed action (payment "
        "reminder, restructuring offer, retention offer, service-recovery call), its effect "
        "on default, churn and dissatisfaction, values it, subtracts the contact cost and "
        "picks the action with the highest positive net benefit, or none. The outreach "
        "queue ranks these decisions within the team's capacity.",
        "决策层对每位客户、每个允许的动作（还款提醒、重组方案、挽留优惠、服务补救回访）估计其对"
        "违约、流失和不满意的效果，折算价值并扣除联系成本，选择净收益最高且为正的动作，否则不"
        "联系。联系队列在团队联系名额内对这些决策排序。"),
    "action": ("action", "动作"), "outcome": ("outcome", "结果"),
    "odds_ratio": ("odds ratio", "优势比"), "qini": ("held-out Qini", "留出样本 Qini"),
    "qini_se": ("Qini standard error", "Qini 标准误"), "auuc": ("AUUC", "AUUC"),
    "learner": ("learner", "学习器"), "n_train": ("training rows", "训练样本量"),
    "uplift_text": (
        "Odds ratio of each outcome when the action is taken (below 1: fewer of that "
        "outcome) with its 95% confidence interval, from the randomised contact logs; "
        "held-out Qini and its bootstrap standard error rank the customers by estimated "
        "effect.",
        "基于随机化联系记录估计：采取该动作时各结果的优势比（小于1表示该结果减少）及其95%"
        "置信区间；留出样本 Qini 及其自助法标准误衡量按估计效应排序客户的能力。"),
    "gate_text": (
        "Decision gate: on each action's held-out randomised contacts, the money per "
        "contact of deciding with the learned effects minus deciding with the strategy "
        "constants (inverse-propensity, paired), and its standard error. Learned effects "
        "decide the action only where that difference clears the bar; elsewhere the "
        "constants decide.",
        "决策闸门：在各动作的留出随机化联系样本上，按学习所得效应决策与按策略常数决策的每个样本"
        "价值之差（逆倾向加权，配对）及其标准误。仅当差值超过门槛时才按学习所得效应决策，否则按"
        "策略常数决策。"),
    "gate_difference": ("learned minus constants", "学习所得减常数"),
    "gate_se": ("standard error", "标准误"),
    "gate_reason": ("verdict", "结论"),
    "uplift_missing": ("No uplift model is registered: the queue falls back to the strategy "
                       "constants.", "未注册增量效应模型：联系队列退回使用策略常数。"),
    "replay_text": ("Realised outcomes of the book under each policy, replayed on the "
                    "simulator from {as_of} (mean over runs, with intervals).",
                    "自{as_of}起在模拟器上按各策略回放的实际结果（多次运行均值及区间）。"),
    "replay_missing": ("No policy replay output (data/processed/policy/<as-of>/summary.parquet)"
                       ": run `postloan evaluate-policy`.",
                       "无策略回放结果（data/processed/policy/<as-of>/summary.parquet）："
                       "请运行 `postloan evaluate-policy`。"),
    "rules_text": ("The handbook's rules that the strategy enforces; each is held by a test "
                   "(tests/decisions/test_handbook_rules.py).",
                   "策略执行的手册规则；每条规则均有测试保证（tests/decisions/test_handbook_rules.py）。"),
    "rule": ("rule", "规则"), "test": ("test", "测试"), "setting": ("setting", "设定"),
    "cost": ("contact cost", "联系成本"), "capacity": ("outreach capacity", "联系名额"),
    "d_limits": (
        "Effects are learned from the lender's randomised contact logs and hold for the "
        "customers and actions seen there; the policy replay runs on the simulator, whose "
        "response to contacts is an assumption, not a measurement.",
        "效果从机构的随机化联系记录中学习，仅适用于记录中出现的客户和动作；策略回放在模拟器上"
        "运行，模拟器对联系的反应是假设而非测量。"),
    "f_qini": ("{action}: held-out Qini {qini} is within 1.645 standard errors of zero.",
               "{action}：留出样本 Qini {qini} 与零的差距在1.645个标准误之内。"),
    # --- customer page
    "c_scores": ("Scores and reason codes", "评分与原因码"),
    "c_signals": ("Warning signals", "预警信号"),
    "c_decision": ("Decision", "决策"),
    "c_history": ("Scores over the last 12 as-of dates", "近12个观察日的评分"),
    "probability": ("probability", "概率"), "reason_up": ("raising the score", "推高分数"),
    "reason_down": ("lowering the score", "降低分数"),
    "contribution": ("contribution (log-odds)", "贡献（对数几率）"),
    "reason": ("reason", "原因"),
    "no_signals": ("No warning signal fired.", "未触发预警信号。"),
    "warning_level": ("warning level", "预警等级"), "risk_grade": ("risk grade", "风险等级"),
    "expected_loss": ("expected loss", "预期损失"), "segment_strategy": ("segment", "客群策略"),
    "recommended_action": ("recommended action", "建议动作"),
    "expected_benefit": ("expected benefit", "预期收益"), "net_benefit": ("net benefit", "净收益"),
    "decision_basis": ("decision basis", "决策依据"), "reasons": ("reasons", "理由"),
    "response": ("response", "应对措施"), "customer_value": ("customer value", "客户价值"),
    "queue_rank": ("queue rank", "队列排名"),
    "m_default_risk": ("probability of default (12 months)", "违约概率（12个月）"),
    "m_churn": ("churn probability (6 months)", "流失概率（6个月）"),
    "m_satisfaction": ("dissatisfaction probability (3 months)", "不满意概率（3个月）"),
    "waterfall": ("SHAP waterfall: {model}", "SHAP瀑布图：{model}"),
    "decision_missing": ("No decision: it weighs all three scores and there is no champion "
                         "for {models}.", "无决策：决策需要三个模型的评分，缺少冠军模型：{models}。"),
    "history_missing": ("No earlier as-of date in the book.", "数据中无更早的观察日。"),
    "action_none": ("none", "不联系"),
    "level_green": ("green", "绿色"), "level_yellow": ("yellow", "黄色"),
    "level_orange": ("orange", "橙色"), "level_red": ("red", "红色"),
}


def tr(key: str, lang: str, **values: object) -> str:
    """The text `key` in `lang`, with ``{placeholders}`` filled from `values`.

    Raises:
        KeyError: unknown key (a bug: every key the pages use is in :data:`TEXTS`).
        ConfigError: unknown language.
    """
    en, zh = TEXTS[key]
    text = zh if check_lang(lang) == "zh" else en
    return text.format(**values) if values else text


__all__ = ["TEXTS", "tr"]
