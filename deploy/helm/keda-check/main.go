// keda-check runs KEDA's own code on a ScaledObject rendered by the docgraph
// chart and prints what the KEDA operator would conclude from a real Redis:
//
//   - each redis-streams trigger goes through scalers.NewRedisStreamsScaler
//     (github.com/kedacore/keda/v2/pkg/scalers, the scaler the operator runs),
//     then GetMetricSpecForScaling and GetMetricsAndActivity;
//   - a scalingModifiers formula (the chart sums every partition x lane
//     stream into one backlog) is validated and compiled by KEDA's
//     v1alpha1.ValidateAndCompileScalingModifiers and evaluated by KEDA's
//     modifiers.HandleScalingModifiers; the ScaledObject's activity is then
//     decided as pkg/scaling/scale_handler.go does (composite value >
//     activationTarget; without a formula: any trigger active).
//
// Input (stdin, JSON): {"scaledObject": <the ScaledObject as JSON>,
// "authParams": {"password": "..."}}; authParams stand for what the
// TriggerAuthentication resolves from its Secret.
//
// Output (stdout, JSON): {"triggers": [...], "composite": {...} | null,
// "isActive": bool}. A trigger KEDA refuses (bad metadata, no connection)
// carries "error"; the exit status is 0 as long as the input could be read.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/metrics/pkg/apis/external_metrics"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	"github.com/kedacore/keda/v2/pkg/scaling/cache"
	"github.com/kedacore/keda/v2/pkg/scaling/modifiers"
)

type input struct {
	ScaledObject kedav1alpha1.ScaledObject `json:"scaledObject"`
	AuthParams   map[string]string         `json:"authParams"`
}

type triggerResult struct {
	Name        string   `json:"name"`
	Type        string   `json:"type"`
	Stream      string   `json:"stream"`
	MetricName  string   `json:"metricName,omitempty"`
	TargetType  string   `json:"targetType,omitempty"`
	Target      *float64 `json:"target,omitempty"`
	MetricValue *float64 `json:"metricValue,omitempty"`
	IsActive    bool     `json:"isActive"`
	Error       string   `json:"error,omitempty"`
}

type compositeResult struct {
	Formula          string   `json:"formula"`
	Target           string   `json:"target"`
	ActivationTarget string   `json:"activationTarget"`
	MetricType       string   `json:"metricType"`
	Value            *float64 `json:"value,omitempty"`
	IsActive         bool     `json:"isActive"`
	Error            string   `json:"error,omitempty"`
}

type output struct {
	Triggers  []triggerResult  `json:"triggers"`
	Composite *compositeResult `json:"composite"`
	IsActive  bool             `json:"isActive"`
	Error     string           `json:"error,omitempty"`
}

func f64(v float64) *float64 { return &v }

// runTrigger builds KEDA's scaler for one trigger and asks it for its metric.
func runTrigger(ctx context.Context, so *kedav1alpha1.ScaledObject, index int, t kedav1alpha1.ScaleTriggers,
	auth map[string]string) (triggerResult, []external_metrics.ExternalMetricValue, map[string]string) {
	res := triggerResult{Name: t.Name, Type: t.Type, Stream: t.Metadata["stream"]}
	var clustered, sentinel bool
	switch t.Type {
	case "redis-streams":
	case "redis-cluster-streams":
		clustered = true
	case "redis-sentinel-streams":
		sentinel = true
	default:
		res.Error = fmt.Sprintf("not a redis streams trigger type: %q", t.Type)
		return res, nil, nil
	}
	authParams := map[string]string{}
	if t.AuthenticationRef != nil {
		for k, v := range auth {
			authParams[k] = v
		}
	}
	cfg := &scalersconfig.ScalerConfig{
		ScalableObjectName:      so.Name,
		ScalableObjectNamespace: so.Namespace,
		ScalableObjectType:      "ScaledObject",
		TriggerName:             t.Name,
		TriggerType:             t.Type,
		TriggerMetadata:         t.Metadata,
		TriggerUseCachedMetrics: t.UseCachedMetrics,
		AuthParams:              authParams,
		ResolvedEnv:             map[string]string{},
		TriggerIndex:            index,
		GlobalHTTPTimeout:       5 * time.Second,
		MetricType:              t.MetricType,
		AsMetricSource:          so.IsUsingModifiers(),
		ScaledObject:            so,
	}
	scaler, err := scalers.NewRedisStreamsScaler(ctx, clustered, sentinel, cfg)
	if err != nil {
		res.Error = err.Error()
		return res, nil, nil
	}
	defer scaler.Close(ctx)

	specs := scaler.GetMetricSpecForScaling(ctx)
	if len(specs) != 1 || specs[0].External == nil {
		res.Error = fmt.Sprintf("expected one external metric spec, got %d", len(specs))
		return res, nil, nil
	}
	ext := specs[0].External
	res.MetricName = ext.Metric.Name
	res.TargetType = string(ext.Target.Type)
	switch {
	case ext.Target.AverageValue != nil:
		res.Target = f64(ext.Target.AverageValue.AsApproximateFloat64())
	case ext.Target.Value != nil:
		res.Target = f64(ext.Target.Value.AsApproximateFloat64())
	}
	pairs, err := modifiers.GetPairTriggerAndMetric(so, ext.Metric.Name, t.Name)
	if err != nil {
		res.Error = err.Error()
		return res, nil, nil
	}
	values, active, err := scaler.GetMetricsAndActivity(ctx, ext.Metric.Name)
	if err != nil {
		res.Error = err.Error()
		return res, nil, nil
	}
	if len(values) != 1 {
		res.Error = fmt.Sprintf("expected one metric value, got %d", len(values))
		return res, nil, nil
	}
	res.MetricValue = f64(values[0].Value.AsApproximateFloat64())
	res.IsActive = active
	return res, values, pairs
}

func run(ctx context.Context, in input) output {
	so := &in.ScaledObject
	out := output{Triggers: []triggerResult{}}
	var metrics []external_metrics.ExternalMetricValue
	pairs := map[string]string{}
	failed := false
	for i, t := range so.Spec.Triggers {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second) // one hung connection must not starve the rest
		res, values, p := runTrigger(tctx, so, i, t, in.AuthParams)
		cancel()
		out.Triggers = append(out.Triggers, res)
		if res.Error != "" {
			failed = true
			continue
		}
		metrics = append(metrics, values...)
		for k, v := range p {
			pairs[k] = v
		}
		if !so.IsUsingModifiers() && res.IsActive {
			out.IsActive = true
		}
	}
	if !so.IsUsingModifiers() {
		return out
	}

	sm := so.Spec.Advanced.ScalingModifiers
	comp := &compositeResult{Formula: sm.Formula, Target: sm.Target, ActivationTarget: sm.ActivationTarget,
		MetricType: string(sm.MetricType)}
	out.Composite = comp
	out.IsActive = false
	program, err := kedav1alpha1.ValidateAndCompileScalingModifiers(so)
	if err != nil {
		comp.Error = err.Error()
		return out
	}
	if failed { // scale_handler: an erroring scaler makes the ScaledObject inactive
		comp.Error = "a trigger failed: the formula is not evaluated"
		return out
	}
	c := &cache.ScalersCache{ScaledObject: so, CompiledFormula: program}
	composite := modifiers.HandleScalingModifiers(so, metrics, pairs, false, nil, c, logr.Discard())
	if len(composite) != 1 || composite[0].MetricName != kedav1alpha1.CompositeMetricName {
		comp.Error = fmt.Sprintf("the formula gave %d metrics, not one %s", len(composite), kedav1alpha1.CompositeMetricName)
		return out
	}
	activation := 0.0
	if sm.ActivationTarget != "" {
		activation, err = strconv.ParseFloat(sm.ActivationTarget, 64)
		if err != nil {
			comp.Error = fmt.Sprintf("scalingModifiers.activationTarget: %v", err)
			return out
		}
	}
	value := composite[0].Value.AsApproximateFloat64()
	comp.Value = &value
	comp.IsActive = value > activation
	out.IsActive = comp.IsActive
	return out
}

func main() {
	var in input
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fmt.Fprintf(os.Stderr, "keda-check: cannot read the input JSON: %v\n", err)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out := run(ctx, in)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintf(os.Stderr, "keda-check: %v\n", err)
		os.Exit(2)
	}
}
