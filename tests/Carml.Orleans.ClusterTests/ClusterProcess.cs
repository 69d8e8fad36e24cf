using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Carml.Orleans.ClusterTests;

/// <summary>
/// A process the test starts with <c>dotnet &lt;dll&gt;</c>: its output is kept for failure messages, it can be stopped
/// gracefully with SIGTERM, and disposing it kills it (and its children) if it is still running.
/// </summary>
public sealed class ClusterProcess : IAsyncDisposable
{
    private const int MaxKeptLines = 400;
    private const int SigTerm = 15;

    private readonly Process _process;
    private readonly Queue<string> _lines = new();
    private readonly List<(Regex Pattern, TaskCompletionSource<Match> Found)> _waiters = [];

    private ClusterProcess(string name, Process process)
    {
        Name = name;
        _process = process;
    }

    public string Name { get; }

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public static ClusterProcess Start(string name, string dll, IReadOnlyDictionary<string, string> environment, params string[] arguments)
    {
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException($"{name}: {dll} is not built; build the solution first.", dll);
        }

        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetDirectoryName(dll)!,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // Only what the test says: no Consul address or token leaking in from the developer's shell.
        start.Environment.Remove("CONSUL_HTTP_ADDR");
        start.Environment.Remove("CONSUL_HTTP_TOKEN");
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var instance = new ClusterProcess(name, process);
        process.OutputDataReceived += (_, e) => instance.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => instance.OnLine(e.Data is null ? null : "stderr: " + e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return instance;
    }

    /// <summary>Waits for an output line matching <paramref name="pattern"/>; fails early if the process exits.</summary>
    public async Task<Match> WaitForLineAsync(string pattern, TimeSpan timeout)
    {
        var found = new TaskCompletionSource<Match>(TaskCreationOptions.RunContinuationsAsynchronously);
        var regex = new Regex(pattern);
        lock (_lines)
        {
            foreach (var line in _lines)
            {
                if (regex.Match(line) is { Success: true } match)
                {
                    return match;
                }
            }

            _waiters.Add((regex, found));
        }

        var exited = _process.WaitForExitAsync();
        var winner = await Task.WhenAny(found.Task, exited, Task.Delay(timeout));
        if (winner == found.Task)
        {
            return await found.Task;
        }

        throw new TimeoutException(winner == exited
            ? $"{Name} exited with code {_process.ExitCode} before printing /{pattern}/.\n{Output}"
            : $"{Name} did not print /{pattern}/ within {timeout.TotalSeconds:0} s.\n{Output}");
    }

    /// <summary>SIGKILL, as when the host fails: the process dies at once and cleans nothing up.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: false);
        _process.WaitForExit(TimeSpan.FromSeconds(10));
    }

    /// <summary>SIGTERM, as a service manager stops a process; the generic host then shuts down gracefully.</summary>
    public async Task<int> StopGracefullyAsync(TimeSpan timeout)
    {
        if (!_process.HasExited)
        {
            if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            {
                throw new PlatformNotSupportedException("Graceful stop sends SIGTERM; this test runs on Linux or macOS.");
            }

            if (Kill(_process.Id, SigTerm) != 0)
            {
                throw new InvalidOperationException($"Could not send SIGTERM to {Name} (pid {_process.Id}): errno {Marshal.GetLastPInvokeError()}.");
            }
        }

        using var wait = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(wait.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"{Name} did not stop within {timeout.TotalSeconds:0} s of SIGTERM.\n{Output}");
        }

        return _process.ExitCode;
    }

    public string Output
    {
        get
        {
            lock (_lines)
            {
                return $"--- last output of {Name} ---\n" + string.Join('\n', _lines);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            }
        }
        catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
        {
            // Already gone, or not stopping: nothing more a test can do.
        }

        _process.Dispose();
    }

    /// <summary>The built entry assembly of a project, in the same configuration as this test assembly.</summary>
    public static string BuiltDll(string projectDirectory, string assemblyName)
    {
        var configuration = typeof(ClusterProcess).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        return Path.Combine(RepositoryPaths.Root, projectDirectory, "bin", configuration, "net10.0", assemblyName + ".dll");
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_lines)
        {
            _lines.Enqueue(line);
            if (_lines.Count > MaxKeptLines)
            {
                _lines.Dequeue();
            }

            foreach (var waiter in _waiters.ToArray())
            {
                if (waiter.Pattern.Match(line) is { Success: true } match)
                {
                    waiter.Found.TrySetResult(match);
                    _waiters.Remove(waiter);
                }
            }
        }
    }

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);
}

/// <summary>Finds the checkout by walking up from the test binaries to the solution file.</summary>
internal static class RepositoryPaths
{
    private static readonly Lazy<string> RootDirectory = new(() =>
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Carml.Orleans.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Carml.Orleans.sln above {AppContext.BaseDirectory}.");
    });

    public static string Root => RootDirectory.Value;
}
