"""The reliability campaign: bad media, faults and hostile requests through every stage
(``clipguard reliability run``, ``make reliability``)."""
