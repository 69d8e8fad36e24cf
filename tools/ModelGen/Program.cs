using Carml.Orleans.ModelGen;

return ModelGenCommands.Run(args, Console.Out, Console.Error);
