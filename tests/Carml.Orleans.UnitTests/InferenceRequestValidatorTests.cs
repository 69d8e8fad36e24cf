using Carml.Orleans.Core;
using Carml.Orleans.Interfaces;

namespace Carml.Orleans.Tests;

public sealed class InferenceRequestValidatorTests
{
    private static readonly ModelManifest Manifest = new()
    {
        Name = "m",
        Version = "1",
        MaxBatchSize = 4,
        Inputs = [new TensorSpec("a", TensorDatatype.FP32, [-1, 2]), new TensorSpec("b", TensorDatatype.Int64, [-1])],
        Outputs = [new TensorSpec("y", TensorDatatype.FP32, [-1])],
    };

    private static InferenceTensor A(long rows, int? bytes = null) => new("a", TensorDatatype.FP32, [rows, 2], new byte[bytes ?? (int)(rows * 8)]);

    private static InferenceTensor B(long rows) => new("b", TensorDatatype.Int64, [rows], new byte[rows * 8]);

    [Fact]
    public void Valid_request_returns_its_batch_size()
    {
        Assert.Equal(3, InferenceRequestValidator.Validate(Manifest, new InferenceRequest([A(3), B(3)], ["y"])));
    }

    [Fact]
    public void Wrong_datatype_names_tensor_and_expected_type()
    {
        var request = new InferenceRequest([new InferenceTensor("a", TensorDatatype.FP64, [1, 2], new byte[16]), B(1)]);

        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, request));

        Assert.Equal(ModelErrorKind.InvalidArgument, error.Kind);
        Assert.Contains("input 'a': datatype FP64 does not match the model's FP32", error.Message);
    }

    [Fact]
    public void Wrong_shape_data_length_batch_and_names_are_all_reported()
    {
        var request = new InferenceRequest(
            [new InferenceTensor("a", TensorDatatype.FP32, [1, 3], new byte[12]), new InferenceTensor("zz", TensorDatatype.FP32, [1], new byte[4])],
            ["nope"]);

        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, request));

        Assert.Contains(error.Problems, p => p.StartsWith("input 'a': shape [1,3] does not match the model's [-1,2] at dimension 1", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("unknown input 'zz'", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("missing input 'b'", StringComparison.Ordinal));
        Assert.Contains(error.Problems, p => p.StartsWith("unknown output 'nope'", StringComparison.Ordinal));
    }

    [Fact]
    public void Data_length_not_matching_shape_is_refused()
    {
        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, new InferenceRequest([A(2, bytes: 12), B(2)])));

        Assert.Contains("input 'a': 12 bytes of data do not match shape [2,2] of FP32 (16 bytes expected)", error.Message);
    }

    [Fact]
    public void Batch_larger_than_max_batch_size_is_refused()
    {
        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, new InferenceRequest([A(5), B(5)])));

        Assert.Contains("batch size 5 exceeds the model's max_batch_size 4", error.Message);
    }

    [Fact]
    public void Inputs_with_different_batch_sizes_are_refused()
    {
        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, new InferenceRequest([A(2), B(3)])));

        Assert.Contains("batch size 3 differs from the other inputs' 2", error.Message);
    }

    [Fact]
    public void Duplicate_input_is_refused()
    {
        var error = Assert.Throws<ModelException>(() => InferenceRequestValidator.Validate(Manifest, new InferenceRequest([A(1), A(1), B(1)])));

        Assert.Contains("input 'a' is given more than once", error.Message);
    }
}
