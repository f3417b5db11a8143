"""The NSML platform: sessions on a shared cluster, metrics, checkpoints, server, CLI and web pages."""
