namespace Carml.Orleans.Grains;

/// <summary>Names of the grain storage providers the grains use; the silo host binds each to a real store.</summary>
public static class StorageNames
{
    /// <summary>Model registrations and the model catalog.</summary>
    public const string Models = "carml-models";
}
