"""Notifications: events about credentials, delivered to the admin's sinks."""
