using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests;

public sealed class ManifestReaderTests
{
    private const string ValidYaml = """
        name: iris
        version: "1"
        framework: onnxruntime
        description: Softmax regression
        license: CC-BY-4.0
        max_batch_size: 64
        inputs:
          - name: features
            datatype: FP32
            shape: [-1, 4]
        outputs:
          - name: probabilities
            datatype: FP32
            shape: [-1, 3]
          - name: label
            datatype: INT64
            shape: [-1]
        labels: [setosa, versicolor, virginica]
        attributes:
          accuracy: 0.97
        source:
          path: iris.onnx
        """;

    [Fact]
    public void Valid_yaml_manifest_is_read_completely()
    {
        var manifest = ManifestReader.Parse(ValidYaml);

        Assert.Equal("iris", manifest.Name);
        Assert.Equal("1", manifest.Version);
        Assert.Equal(64, manifest.MaxBatchSize);
        Assert.Equal("CC-BY-4.0", manifest.License);
        var input = Assert.Single(manifest.Inputs);
        Assert.Equal(new TensorSpec("features", TensorDatatype.FP32, [-1, 4]).Name, input.Name);
        Assert.Equal([-1L, 4L], input.Shape);
        Assert.Equal(TensorDatatype.Int64, manifest.Outputs[1].Datatype);
        Assert.Equal(["setosa", "versicolor", "virginica"], manifest.Labels);
        Assert.Equal("0.97", manifest.Attributes["accuracy"]);
        Assert.Equal("iris.onnx", manifest.Source.Path);
    }

    [Fact]
    public void Json_manifest_is_read_like_yaml()
    {
        var manifest = ManifestReader.Parse("""
            {"name": "iris", "version": "2", "framework": {"name": "onnxruntime", "version": "1.31"},
             "max_batch_size": 8,
             "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}],
             "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]}],
             "source": {"sha256": "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"}}
            """);

        Assert.Equal("2", manifest.Version);
        Assert.Equal(ModelFrameworks.OnnxRuntime, manifest.Framework);
        Assert.Equal("abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789", manifest.Source.Sha256);
    }

    [Fact]
    public void Invalid_manifest_reports_every_problem_at_once()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse("""
            name: "bad name!"
            version: latest
            framework: tensorflow
            max_batch_size: -3
            inputs:
              - name: x
                datatype: FLOAT
                shape: [-1, a]
              - name: x
                datatype: FP32
                shape: [2, -5]
            outputs: nope
            colour: blue
            """));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
        var problems = string.Join("\n", error.Problems);
        Assert.Contains("unknown field 'colour'", problems);
        Assert.Contains("datatype 'FLOAT' is not a KServe v2 datatype", problems);
        Assert.Contains("shape dimension 'a' is not an integer", problems);
        Assert.Contains("outputs must be a list", problems);
        Assert.Contains("name 'bad name!'", problems);
        Assert.Contains("version 'latest' is reserved", problems);
        Assert.Contains("framework 'tensorflow' is not supported", problems);
        Assert.Contains("max_batch_size must be 0", problems);
        Assert.Contains("the name is used twice", problems);
        Assert.Contains("shape dimension -5 is invalid", problems);
        Assert.True(error.Problems.Length >= 10, problems);
    }

    [Theory]
    [InlineData("", "the manifest is empty")]
    [InlineData("- just\n- a list", "single mapping")]
    [InlineData("name: [unclosed", "not valid YAML or JSON at line")]
    [InlineData("{\"name\": \"x\",, }", "not valid YAML or JSON")]
    public void Unreadable_manifest_is_rejected_clearly(string text, string expected)
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(text));

        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void Batched_model_needs_a_variable_first_dimension()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(ValidYaml.Replace("[-1, 4]", "[1, 4]")));

        Assert.Contains("inputs 'features': with max_batch_size 64 the first dimension is the batch and must be -1, got 1", error.Problems);
    }

    [Fact]
    public void Missing_required_fields_are_named()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse("description: nothing else"));

        Assert.Contains("manifest: name is required", error.Problems);
        Assert.Contains("manifest: version is required", error.Problems);
        Assert.Contains("inputs is required: list at least one tensor", error.Problems);
        Assert.Contains("outputs is required: list at least one tensor", error.Problems);
    }

    [Fact]
    public void Bytes_tensors_are_refused_until_supported()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(ValidYaml.Replace("datatype: INT64", "datatype: BYTES")));

        Assert.Contains("outputs 'label': datatype BYTES is not supported for inference yet", error.Problems);
    }
}

public sealed class ManifestBatchingTests
{
    internal const string Base = """
        name: mlp
        version: "1"
        max_batch_size: 32
        inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]
        outputs: [{name: y, datatype: FP32, shape: [-1, 2]}]
        """;

    [Fact]
    public void Dynamic_batching_and_runtime_sections_are_read()
    {
        var manifest = ManifestReader.Parse(Base + """

            dynamic_batching:
              max_queue_delay_microseconds: 200
              preferred_batch_size: [8, 16]
              max_queue_size: 128
              default_timeout_microseconds: 50000
            runtime:
              intra_op_threads: 2
              inter_op_threads: 1
              max_concurrent_runs: 1
            """);

        var batching = Assert.IsType<DynamicBatchingSettings>(manifest.DynamicBatching);
        Assert.True(batching.Enabled);
        Assert.Equal(200, batching.MaxQueueDelayMicroseconds);
        Assert.Equal([8, 16], batching.PreferredBatchSizes);
        Assert.Equal(128, batching.MaxQueueSize);
        Assert.Equal(50000, batching.DefaultTimeoutMicroseconds);
        Assert.Equal(new RuntimeSettings { IntraOpThreads = 2, InterOpThreads = 1, MaxConcurrentRuns = 1 }, manifest.Runtime);
    }

    [Fact]
    public void An_empty_dynamic_batching_section_turns_batching_on_with_defaults()
    {
        var manifest = ManifestReader.Parse(Base + "\ndynamic_batching: {}\n");

        Assert.Equal(new DynamicBatchingSettings(), manifest.DynamicBatching! with { PreferredBatchSizes = [] });
        Assert.Null(ManifestReader.Parse(Base).DynamicBatching);
    }

    [Fact]
    public void Batching_settings_out_of_range_are_all_reported()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(Base.Replace("max_batch_size: 32", "max_batch_size: 0", StringComparison.Ordinal) + """

            dynamic_batching:
              max_queue_delay_microseconds: -1
              preferred_batch_size: [0, 4, 4]
              max_queue_size: -2
              default_timeout_microseconds: -3
              pipelining: true
            runtime:
              intra_op_threads: -1
              max_concurrent_runs: 0
            """));

        Assert.Contains(error.Problems, p => p.Contains("unknown field 'pipelining'", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("dynamic_batching needs max_batch_size > 0", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("max_queue_delay_microseconds must be 0 or positive", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("preferred_batch_size 0 must be between 1", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("max_queue_size must be 0 (unbounded) or positive", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("default_timeout_microseconds must be 0", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("runtime.intra_op_threads must be 0", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("runtime.max_concurrent_runs must be between 1", StringComparison.Ordinal));
    }

    [Fact]
    public void Batching_can_be_turned_off_for_a_model_without_a_batch_dimension()
    {
        var manifest = ManifestReader.Parse(Base.Replace("max_batch_size: 32", "max_batch_size: 0", StringComparison.Ordinal)
            .Replace("[-1, 4]", "[1, 4]", StringComparison.Ordinal).Replace("[-1, 2]", "[1, 2]", StringComparison.Ordinal)
            + "\ndynamic_batching: {enabled: false, max_queue_size: 4}\n");

        Assert.False(manifest.DynamicBatching!.Enabled);
        Assert.Equal(4, manifest.DynamicBatching.MaxQueueSize);
    }
}

public sealed class ManifestDeploymentTests
{
    private const string Base = ManifestBatchingTests.Base;

    [Fact]
    public void Deployment_section_is_read()
    {
        var manifest = ManifestReader.Parse(Base + """

            deployment:
              device: gpu
              min_gpu_memory_mb: 2048
              replicas: 3
              max_concurrent_requests: 64
            """);

        Assert.Equal(
            new DeploymentSettings { Device = DeviceRequirement.Gpu, MinGpuMemoryBytes = 2048L * 1024 * 1024, Replicas = 3, MaxConcurrentRequests = 64 },
            manifest.Deployment);
    }

    [Fact]
    public void Without_a_deployment_section_a_model_runs_one_replica_anywhere()
    {
        var manifest = ManifestReader.Parse(Base);

        Assert.Null(manifest.Deployment);
        Assert.Equal(new DeploymentSettings { Device = DeviceRequirement.Any, Replicas = 1 }, ManifestReader.Parse(Base + "\ndeployment: {}\n").Deployment);
    }

    [Fact]
    public void Deployment_settings_out_of_range_are_all_reported()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(Base + """

            deployment:
              device: tpu
              replicas: 0
              max_concurrent_requests: -1
              min_gpu_memory_mb: -5
              zone: eu
            """));

        Assert.Contains(error.Problems, p => p.Contains("deployment.device must be gpu, cpu or any, got 'tpu'", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("deployment.replicas must be between 1 and 64", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("deployment.max_concurrent_requests must be 0", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("deployment.min_gpu_memory_mb must be a whole number", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.Contains("unknown field 'zone'", StringComparison.Ordinal));
    }

    [Fact]
    public void A_gpu_memory_minimum_on_a_cpu_model_is_refused()
    {
        var error = Assert.Throws<ModelException>(() => ManifestReader.Parse(Base + "\ndeployment: {device: cpu, min_gpu_memory_mb: 512}\n"));

        Assert.Contains(error.Problems, p => p.Contains("min_gpu_memory_mb needs device gpu or any", StringComparison.Ordinal));
    }
}
