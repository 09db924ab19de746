package main

// The factories of exactly the components otel-collector.yaml uses (what ocb
// would generate from a builder manifest listing them). The *Modules maps only
// feed `docgraph-otelcol components`; keep their versions in step with go.mod.

import (
	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/prometheusexporter"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/healthcheckextension"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/debugexporter"
	"go.opentelemetry.io/collector/exporter/otlpexporter"
	"go.opentelemetry.io/collector/extension"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/batchprocessor"
	"go.opentelemetry.io/collector/processor/memorylimiterprocessor"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry/otelconftelemetry"
)

const (
	coreVersion    = "v0.140.0" // go.opentelemetry.io/collector/* (stable modules: v1.46.0)
	contribVersion = "v0.140.1" // github.com/open-telemetry/opentelemetry-collector-contrib/*
	contrib        = "github.com/open-telemetry/opentelemetry-collector-contrib/"
)

// components: receivers otlp; processors memory_limiter, batch; exporters
// otlp, debug, prometheus; extension health_check.
func components() (otelcol.Factories, error) {
	var err error
	// the collector's own logs and metrics (service.telemetry in the yaml)
	factories := otelcol.Factories{Telemetry: otelconftelemetry.NewFactory()}
	if factories.Extensions, err = otelcol.MakeFactoryMap[extension.Factory](
		healthcheckextension.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	factories.ExtensionModules = map[component.Type]string{
		healthcheckextension.NewFactory().Type(): contrib + "extension/healthcheckextension " + contribVersion,
	}
	if factories.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](
		otlpreceiver.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	factories.ReceiverModules = map[component.Type]string{
		otlpreceiver.NewFactory().Type(): "go.opentelemetry.io/collector/receiver/otlpreceiver " + coreVersion,
	}
	if factories.Processors, err = otelcol.MakeFactoryMap[processor.Factory](
		memorylimiterprocessor.NewFactory(),
		batchprocessor.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	factories.ProcessorModules = map[component.Type]string{
		memorylimiterprocessor.NewFactory().Type(): "go.opentelemetry.io/collector/processor/memorylimiterprocessor " + coreVersion,
		batchprocessor.NewFactory().Type():         "go.opentelemetry.io/collector/processor/batchprocessor " + coreVersion,
	}
	if factories.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](
		otlpexporter.NewFactory(),
		debugexporter.NewFactory(),
		prometheusexporter.NewFactory(),
	); err != nil {
		return otelcol.Factories{}, err
	}
	factories.ExporterModules = map[component.Type]string{
		otlpexporter.NewFactory().Type():       "go.opentelemetry.io/collector/exporter/otlpexporter " + coreVersion,
		debugexporter.NewFactory().Type():      "go.opentelemetry.io/collector/exporter/debugexporter " + coreVersion,
		prometheusexporter.NewFactory().Type(): contrib + "exporter/prometheusexporter " + contribVersion,
	}
	return factories, nil
}
