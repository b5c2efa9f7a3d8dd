"""Test helpers: real servers in processes (Jupyter, moto S3, PostgreSQL), proxies that
inject faults, and ways to look at an archive behind bookstore's back."""
