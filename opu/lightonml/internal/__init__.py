"""Import paths lightonml users reach into (`lightonml.internal.types`,
`lightonml.internal.simulated_device`)."""
